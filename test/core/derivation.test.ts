/** ATerm parsing and printing: property round trips, malformed input, and random strings through nix-instantiate. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { AtermReader, quoteAtermString } from '../../daemon/core/aterm.ts';
import { hashDerivationModulo, parseDerivation, printDerivation } from '../../daemon/core/derivation.ts';
import type { Derivation } from '../../daemon/core/derivation.ts';
import { DerivationError } from '../../daemon/core/errors.ts';
import { nix, nixString, nonce, tempDir } from './nix-oracle.ts';

/** Strings with every character class that needs care: quotes, backslashes, control characters, non-BMP. */
const nastyString = fc.string({
  unit: fc.oneof(fc.constantFrom('"', '\\', '\n', '\r', '\t', '$', '{', '(', ')', ',', '[', ']', 'n', 'é', '🚀'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 30,
});
const storePath = fc.stringMatching(/^[0-9a-df-np-sv-z]{32}-[a-z][a-z0-9.-]{0,12}$/).map((b) => `/nix/store/${b}`);
const arbitraryDerivation: fc.Arbitrary<Derivation> = fc.record({
  outputs: fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,6}$/), storePath), { selector: ([name]) => name, maxLength: 3 }).map(
    (outs) => new Map(outs.map(([name, path]) => [name, { path, hashAlgo: '', hash: '' }])),
  ),
  inputDrvs: fc.uniqueArray(fc.tuple(storePath, fc.array(fc.stringMatching(/^[a-z]{1,6}$/), { maxLength: 3 })), { selector: ([p]) => p, maxLength: 3 }).map(
    (entries) => new Map(entries),
  ),
  inputSrcs: fc.array(storePath, { maxLength: 3 }),
  platform: fc.constantFrom('x86_64-linux', 'aarch64-darwin', ''),
  builder: nastyString,
  args: fc.array(nastyString, { maxLength: 4 }),
  env: fc.uniqueArray(fc.tuple(nastyString, nastyString), { selector: ([k]) => k, maxLength: 6 }).map((entries) => new Map(entries)),
}).map((record) => ({ ...record }));

describe('ATerm round trips', () => {
  test('parse(print(d)) equals d and printing is stable', () => {
    fc.assert(
      fc.property(arbitraryDerivation, (drv) => {
        const text = printDerivation(drv);
        const parsed = parseDerivation(text);
        assert.deepEqual(parsed, drv);
        assert.equal(printDerivation(parsed), text);
      }),
      { numRuns: 300 },
    );
  });
  test('quoted strings read back exactly', () => {
    fc.assert(
      fc.property(nastyString, (s) => {
        const reader = new AtermReader(quoteAtermString(s));
        assert.equal(reader.string(), s);
        assert.equal(reader.pos, reader.text.length);
      }),
    );
  });
});

describe('malformed derivations', () => {
  const valid = printDerivation({
    outputs: new Map([['out', { path: '/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-x', hashAlgo: '', hash: '' }]]),
    inputDrvs: new Map(),
    inputSrcs: [],
    platform: 'x86_64-linux',
    builder: '/bin/sh',
    args: [],
    env: new Map(),
  });
  const cases: [string, string, RegExp][] = [
    ['truncated', valid.slice(0, -3), /expected|unterminated/],
    ['trailing garbage', `${valid}\n`, /trailing characters/],
    ['not a derivation', 'Derivation([])', /expected 'Derive\('/],
    ['bad output path', valid.replace('0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y', 'eeee'), /output 'out'/],
    ['doubled comma', valid.replace('"x86_64-linux"', ',"x86_64-linux"'), /expected '"'/],
  ];
  for (const [label, text, message] of cases) {
    test(label, () => {
      assert.throws(() => parseDerivation(text), (e: unknown) => e instanceof DerivationError && message.test(e.message) && e.offset !== undefined);
    });
  }
  test('an input derivation missing from the context is an error naming it', () => {
    const drv = parseDerivation(valid);
    drv.inputDrvs.set('/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-dep.drv', ['lib']);
    const dep = { ...drv, inputDrvs: new Map() };
    assert.throws(() => hashDerivationModulo(drv, false, { readDerivation: () => dep }), /has no output 'lib'/);
  });
});

describe('random strings through nix-instantiate', () => {
  const tmp = tempDir('aterm');
  after(() => tmp.cleanup());
  test('Nix writes them as we print them, and we read back what Nix was given', async () => {
    // Nix strings are C strings (no NUL) and the .nix file is UTF-8 (no lone surrogates).
    const wellFormed = (s: string): boolean => new TextDecoder().decode(new TextEncoder().encode(s)) === s;
    const strings = fc.sample(nastyString.filter((s) => !s.includes('\0') && wellFormed(s)), { numRuns: 60 });
    const token = nonce();
    const env = strings.map((s, i) => `s${String(i).padStart(2, '0')} = ${nixString(s)};`).join('\n  ');
    const expr = `derivation {\n  name = "aterm-${token}"; system = "x86_64-linux"; builder = "/bin/sh";\n  args = [ ${strings.map(nixString).join(' ')} ];\n  ${env}\n}\n`;
    writeFileSync(join(tmp.dir, 'aterm.nix'), expr);
    const drvPath = (await nix('nix-instantiate', [join(tmp.dir, 'aterm.nix')])).trim();
    const text = readFileSync(drvPath, 'utf8');
    const drv = parseDerivation(text);
    assert.equal(printDerivation(drv), text);
    assert.deepEqual(drv.args, strings);
    for (const [i, s] of strings.entries()) assert.equal(drv.env.get(`s${String(i).padStart(2, '0')}`), s);
  });
});
