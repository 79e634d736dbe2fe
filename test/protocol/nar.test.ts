import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatHash } from '../../daemon/core/hash.ts';
import { DaemonError, ProtocolError } from '../../daemon/protocol/errors.ts';
import { narFromPath } from '../../daemon/protocol/nar-transfer.ts';
import type { PathInfo } from '../../daemon/protocol/path-info.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { addFile, addPath, daemonSocket, dump, instantiate, nixCli, nixCliResult, nonce, realise, scratchDir } from './helpers.ts';

let pool: DaemonPool;
before(() => {
  pool = new DaemonPool({ socketPath: daemonSocket() });
});
after(() => pool.close());

async function exportNar(path: string): Promise<{ nar: Buffer; info: PathInfo }> {
  const chunks: Buffer[] = [];
  const info = await pool.use((client) => client.narFromPath(path, (chunk) => void chunks.push(Buffer.from(chunk))));
  return { nar: Buffer.concat(chunks), info };
}

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

function tree(): string {
  const root = join(scratchDir(), `tree-${nonce()}`);
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'a.txt'), 'alpha\n');
  writeFileSync(join(root, 'sub', 'run'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'sub', 'run'), 0o755);
  writeFileSync(join(root, 'empty'), '');
  symlinkSync('a.txt', join(root, 'link'));
  return addPath(root);
}

test('nar-from-path streams exactly the bytes of nix-store --dump', async () => {
  for (const path of [tree(), addFile(`big-${nonce()}`, randomBytes(5 * 1024 * 1024 + 3))]) {
    const { nar, info } = await exportNar(path);
    assert.ok(nar.equals(dump(path)), path);
    assert.equal(nar.length, info.narSize);
  }
});

test('add-to-store-nar re-imports a deleted path: nix-store verifies it and reports the same hash', async () => {
  const n = nonce();
  const { drv } = instantiate(`{ drv = sh "nar-import-${n}" "echo imported > $out"; }`, ['drv']);
  const [built] = realise(drv!);
  for (const path of [tree(), built!]) {
    const { nar, info } = await exportNar(path);
    const hashBefore = nixCli('nix-store', ['--query', '--hash', path]).toString().trim();
    await pool.use(async (client) => {
      assert.deepEqual((await client.deletePaths([path])).deleted, [path]);
      assert.equal(await client.isValidPath(path), false);
      await client.addToStoreNar({ info, source: pieces(nar, 4096), dontCheckSigs: true });
    });
    nixCli('nix-store', ['--verify-path', path]);
    assert.equal(nixCli('nix-store', ['--query', '--hash', path]).toString().trim(), hashBefore);
    assert.equal(nixCli('nix-store', ['--query', '--deriver', path]).toString().trim(), info.deriver ?? 'unknown-deriver');
    assert.ok(dump(path).equals(nar));
  }
});

test('a tampered NAR is refused by the daemon and the path stays invalid', async () => {
  const path = addFile(`tamper-${nonce()}`, 'original contents\n');
  const { nar, info } = await exportNar(path);
  await pool.use((client) => client.deletePaths([path]));
  const tampered = Buffer.from(nar);
  tampered[nar.indexOf('original')] = 'O'.charCodeAt(0);
  await assert.rejects(
    pool.use((client) => client.addToStoreNar({ info, source: pieces(tampered, 64), dontCheckSigs: true })),
    (error: unknown) => {
      assert.ok(error instanceof DaemonError, String(error));
      assert.match(error.message, /hash mismatch/);
      return true;
    },
  );
  assert.equal(await pool.use((client) => client.isValidPath(path)), false);
  assert.equal(nixCliResult('nix-store', ['--check-validity', path]).status, 1);
});

test('an import whose source fails midway is abandoned: the path stays invalid and the pool recovers', async () => {
  const path = addFile(`abort-${nonce()}`, randomBytes(256 * 1024));
  const { nar, info } = await exportNar(path);
  await pool.use((client) => client.deletePaths([path]));
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield nar.subarray(0, 100_000);
    throw new Error('upstream went away');
  }
  const client = await pool.acquire();
  await assert.rejects(client.addToStoreNar({ info, source: failing(), dontCheckSigs: true }), /upstream went away/);
  assert.equal(client.connection.broken, true);
  pool.release(client);
  assert.equal(await pool.use((c) => c.isValidPath(path)), false);
  // With the whole NAR the import goes through on a fresh connection.
  await pool.use((c) => c.addToStoreNar({ info, source: pieces(nar, 65536), dontCheckSigs: true }));
  assert.equal(formatHash((await pool.use((c) => c.queryPathInfo(path)))!.narHash, 'base32'), formatHash(info.narHash, 'base32'));
});

test('nar-from-path notices a store object whose registration no longer matches (wrong expected hash)', async () => {
  const path = addFile(`mismatch-${nonce()}`, 'x\n');
  const client = await pool.acquire();
  try {
    const info = (await client.queryPathInfo(path))!;
    const wrong = { ...info, narHash: { ...info.narHash, digest: new Uint8Array(32) } };
    await assert.rejects(
      client.connection.exclusive((io) => narFromPath(io, wrong, () => undefined)),
      (error: unknown) => error instanceof ProtocolError && /corrupt/.test(error.message),
    );
  } finally {
    pool.release(client);
  }
});
