/** Store path parsing, name rules and fixed-output/source paths, checked against nix-store and nix-instantiate. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { StorePathError } from '../../daemon/core/errors.ts';
import { hashBytes, parseHash } from '../../daemon/core/hash.ts';
import type { HashAlgorithm } from '../../daemon/core/hash.ts';
import {
  formatStorePath,
  makeFixedOutputPath,
  makeTextPath,
  parseStorePath,
  validateStorePathName,
} from '../../daemon/core/store-path.ts';
import type { FileIngestionMethod } from '../../daemon/core/store-path.ts';
import { nix, nixAccepts, nixString, nonce, tempDir } from './nix-oracle.ts';

describe('store path names follow Nix', () => {
  const token = nonce();
  const names = [
    `plain-${token}`,
    `all+allowed-chars._?=${token}`,
    `.hidden-${token}`,
    '.',
    `..-${token}`,
    `with space-${token}`,
    `semi;colon-${token}`,
    `ünicode-${token}`,
    `${token}${'a'.repeat(211 - token.length)}`,
    `${token}${'a'.repeat(212 - token.length)}`,
    '',
  ];
  for (const name of names) {
    test(`name ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}…(${name.length})` : name)}`, async () => {
      const verdict = await nixAccepts('nix-instantiate', ['--eval', '-E', `builtins.toFile ${nixString(name)} "x"`]);
      let oursAccepts = true;
      try {
        validateStorePathName(name);
      } catch (error) {
        assert.ok(error instanceof StorePathError);
        oursAccepts = false;
      }
      assert.equal(oursAccepts, verdict.ok, `nix: ${verdict.stderr}`);
      if (verdict.ok) assert.equal(JSON.parse(verdict.stdout), formatStorePath(makeTextPath(name, hashBytes('sha256', 'x'))));
    });
  }
});

describe('parseStorePath', () => {
  const valid = '/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-hello-2.12';
  test('splits a valid path and formats it back', () => {
    assert.deepEqual(parseStorePath(valid), { hashPart: '0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y', name: 'hello-2.12' });
    assert.equal(formatStorePath(parseStorePath(valid)), valid);
    assert.equal(formatStorePath(parseStorePath('/tmp/s/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-x', '/tmp/s'), '/tmp/s'), '/tmp/s/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-x');
  });
  const invalid: [string, RegExp][] = [
    ['/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4e-hello', /not Nix base32/],
    ['/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4-hello', /not Nix base32|hash/],
    ['/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y', /hash, '-' and a name/],
    ['/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-', /hash, '-' and a name/],
    ['/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-hello/bin/hello', /inside a store path/],
    ['/usr/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-hello', /not in the Nix store/],
    ['/nix/store/0C0XZMX6JA3Y9NDJWQYFAHH8IGZDZK4Y-hello', /not Nix base32/],
  ];
  for (const [path, message] of invalid) {
    test(`rejects ${path}`, () => assert.throws(() => parseStorePath(path), (e: unknown) => e instanceof StorePathError && message.test(e.message)));
  }
  test('agrees with nix-store on what is a store path', async () => {
    const verdict = await nixAccepts('nix-store', ['--query', '--hash', '/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4e-hello']);
    assert.equal(verdict.ok, false);
    assert.match(verdict.stderr, /illegal base-32 character/);
  });
});

describe('fixed-output and source paths equal nix-store --add / --add-fixed', () => {
  const tmp = tempDir('add');
  after(() => tmp.cleanup());
  const token = nonce();
  const file = join(tmp.dir, `file-${token}`);
  const dir = join(tmp.dir, `dir-${token}`);
  writeFileSync(file, `contents ${token}\n`);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'sub', 'a'), `a ${token}`);
  writeFileSync(join(dir, 'b'), `b ${token}`, { mode: 0o755 });

  const cases: [FileIngestionMethod, HashAlgorithm, string][] = [
    ['flat', 'sha256', file],
    ['flat', 'sha1', file],
    ['flat', 'md5', file],
    ['recursive', 'sha256', dir],
    ['recursive', 'sha1', dir],
    ['recursive', 'sha512', file],
  ];
  for (const [method, algorithm, path] of cases) {
    test(`${method} ${algorithm}`, async () => {
      const recursive = method === 'recursive' ? ['--recursive'] : [];
      const added = (await nix('nix-store', ['--add-fixed', ...recursive, algorithm, path])).trim();
      const flat = method === 'flat' ? ['--flat'] : [];
      const hash = parseHash((await nix('nix-hash', ['--type', algorithm, ...flat, path])).trim(), algorithm);
      assert.equal(formatStorePath(makeFixedOutputPath({ method, hash, name: path.split('/').pop()! })), added);
    });
  }
  test('nix-store --add is a recursive sha256 source path', async () => {
    const added = (await nix('nix-store', ['--add', dir])).trim();
    const hash = parseHash((await nix('nix-hash', ['--type', 'sha256', dir])).trim(), 'sha256');
    assert.equal(formatStorePath(makeFixedOutputPath({ method: 'recursive', hash, name: `dir-${token}` })), added);
  });
  test('references are refused where Nix cannot have them', () => {
    const ref = parseStorePath('/nix/store/0c0xzmx6ja3y9ndjwqyfahh8igzdzk4y-hello');
    assert.throws(() => makeFixedOutputPath({ method: 'flat', hash: hashBytes('sha256', 'x'), name: 'x', references: [ref] }), StorePathError);
  });
});
