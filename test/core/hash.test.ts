/** Nix base32 and hash parsing/printing, checked against nix-hash and `nix hash`. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { base32Length, decodeBase32, encodeBase32 } from '../../daemon/core/base32.ts';
import { Base32Error, HashError } from '../../daemon/core/errors.ts';
import { compressHash, createHasher, formatHash, hashBytes, HASH_SIZES, parseHash } from '../../daemon/core/hash.ts';
import type { Hash, HashAlgorithm } from '../../daemon/core/hash.ts';
import { NIX_COMMAND, lines, nix, nixAccepts, tempDir } from './nix-oracle.ts';

const ALGORITHMS: HashAlgorithm[] = ['md5', 'sha1', 'sha256', 'sha512'];

describe('hashes agree with nix-hash', () => {
  const tmp = tempDir('hash');
  const files: { path: string; data: Buffer }[] = [];
  before(() => {
    for (let i = 0; i < 6; i++) {
      const data = randomBytes(i * 37);
      const path = join(tmp.dir, `f${i}`);
      writeFileSync(path, data);
      files.push({ path, data });
    }
  });
  after(() => tmp.cleanup());

  for (const algorithm of ALGORITHMS) {
    test(`${algorithm}: digest, base16, base32 and SRI`, async () => {
      const hex = lines(await nix('nix-hash', ['--type', algorithm, '--flat', ...files.map((f) => f.path)]));
      const ours = files.map((f) => hashBytes(algorithm, f.data));
      assert.deepEqual(ours.map((h) => formatHash(h, 'base16', false)), hex);

      const base32 = lines(await nix('nix-hash', ['--type', algorithm, '--to-base32', ...hex]));
      assert.deepEqual(ours.map((h) => formatHash(h, 'base32', false)), base32);
      assert.deepEqual(lines(await nix('nix-hash', ['--type', algorithm, '--to-base16', ...base32])), hex);

      const sri = lines(await nix('nix', [...NIX_COMMAND, 'hash', 'to-sri', '--type', algorithm, ...hex]));
      assert.deepEqual(ours.map((h) => formatHash(h, 'sri')), sri);

      for (const [i, h] of ours.entries()) {
        for (const form of [hex[i]!, base32[i]!, formatHash(h, 'base64', false)]) {
          assert.deepEqual(parseHash(form, algorithm), h, `bare ${form}`);
          assert.deepEqual(parseHash(`${algorithm}:${form}`), h, `prefixed ${form}`);
        }
        assert.deepEqual(parseHash(sri[i]!), h);
        assert.deepEqual(parseHash(hex[i]!.toUpperCase(), algorithm), h, 'Nix accepts upper-case base16');
      }
    });
  }

  test('incremental hashing equals one-shot hashing', () => {
    const data = files[5]!.data;
    for (const algorithm of ALGORITHMS) {
      const hasher = createHasher(algorithm);
      for (let i = 0; i < data.length; i += 50) hasher.update(data.subarray(i, i + 50));
      assert.deepEqual(hasher.digest(), hashBytes(algorithm, data));
    }
  });
});

describe('hash strings Nix rejects are rejected', () => {
  const good = formatHash(hashBytes('sha256', 'x'), 'base32', false);
  const cases: [string, string][] = [
    ['bad base32 character', `sha256:${good.slice(0, -1)}e`],
    ['wrong length', `sha256:${good.slice(1)}`],
    ['type mismatch between prefix and --type', `sha1:${good}`],
    ['unknown algorithm', `sha3:${good}`],
    ['SRI with a short digest', `sha256-${formatHash(hashBytes('sha1', 'x'), 'base64', false)}`],
    ['base32 whose first character overflows the digest', `sha256:z${good.slice(1)}`],
  ];
  for (const [label, text] of cases) {
    test(label, async () => {
      const verdict = await nixAccepts('nix', [...NIX_COMMAND, 'hash', 'to-base16', '--type', 'sha256', text]);
      assert.equal(verdict.ok, false, `nix accepted ${text}`);
      assert.throws(() => parseHash(text, 'sha256'), HashError);
    });
  }
  test('a bare digest without any known type', () => {
    assert.throws(() => parseHash(good), /does not include a type/);
  });
});

describe('Nix base32 properties', () => {
  test('decode inverts encode for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const text = encodeBase32(bytes);
        assert.equal(text.length, base32Length(bytes.length));
        assert.deepEqual(decodeBase32(text), bytes);
      }),
    );
  });
  test('encode inverts decode for any valid string, and invalid strings throw Base32Error', () => {
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'0123456789abcdfghijklmnpqrsvwxyzetou'), maxLength: 60 }), (text) => {
        let decoded: Uint8Array;
        try {
          decoded = decodeBase32(text);
        } catch (error) {
          assert.ok(error instanceof Base32Error);
          invalid++;
          return;
        }
        valid++;
        assert.equal(encodeBase32(decoded), text);
      }),
      { numRuns: 500 },
    );
    assert.ok(valid > 20 && invalid > 20, `both kinds exercised (valid ${valid}, invalid ${invalid})`);
  });
  test('hash printing round-trips in every encoding', () => {
    const arbitraryHash = fc.constantFrom(...ALGORITHMS).chain((algorithm) =>
      fc.uint8Array({ minLength: HASH_SIZES[algorithm], maxLength: HASH_SIZES[algorithm] }).map((digest): Hash => ({ algorithm, digest })),
    );
    fc.assert(
      fc.property(arbitraryHash, fc.constantFrom('base16', 'base32', 'base64', 'sri') as fc.Arbitrary<'base16' | 'base32' | 'base64' | 'sri'>, (h, encoding) => {
        assert.deepEqual(parseHash(formatHash(h, encoding)), h);
        if (encoding !== 'sri') assert.deepEqual(parseHash(formatHash(h, encoding, false), h.algorithm), h);
      }),
    );
  });
  test('compressHash folds by XOR', () => {
    assert.deepEqual(compressHash(Uint8Array.from([1, 2, 3, 4, 5]), 2), Uint8Array.from([1 ^ 3 ^ 5, 2 ^ 4]));
  });
});
