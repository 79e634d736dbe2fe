import assert from 'node:assert/strict';
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DaemonError } from '../../daemon/protocol/errors.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { addFile, daemonSocket, instantiate, nixCli, nixCliResult, nonce, realise, scratchDir } from './helpers.ts';

let pool: DaemonPool;
before(() => {
  pool = new DaemonPool({ socketPath: daemonSocket() });
});
after(() => pool.close());

function deletePerNix(path: string): { ok: boolean; stderr: string } {
  const result = nixCliResult('nix-store', ['--delete', path]);
  return { ok: result.status === 0, stderr: result.stderr };
}

function isValidPerNix(path: string): boolean {
  return nixCliResult('nix-store', ['--check-validity', path]).status === 0;
}

test('a temporary root protects a path exactly as long as its connection lives', async () => {
  const path = addFile(`temproot-${nonce()}`, 'keep me\n');
  const client = await pool.acquire();
  await client.addTempRoot(path);
  const refused = deletePerNix(path);
  assert.equal(refused.ok, false);
  assert.match(refused.stderr, /still alive/);
  pool.release(client, { discard: true });
  // The daemon drops the root when it notices the closed connection; give it a moment.
  for (let i = 0; i < 50 && isValidPerNix(path); i++) {
    if (deletePerNix(path).ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(isValidPerNix(path), false);
});

test('an indirect root keeps a path alive until its symlink is removed, and is listed by --print-roots', async () => {
  const path = addFile(`indirect-${nonce()}`, 'rooted\n');
  const link = join(scratchDir(), 'result');
  symlinkSync(path, link);
  await pool.use((client) => client.addIndirectRoot(link));
  const roots = nixCli('nix-store', ['--gc', '--print-roots']).toString();
  assert.ok(roots.split('\n').some((line) => line.startsWith(`${link} -> ${path}`)), roots);
  assert.equal(deletePerNix(path).ok, false);
  rmSync(link);
  assert.equal(deletePerNix(path).ok, true);
});

test('delete-specific removes exactly the named paths and refuses live ones', async () => {
  const n = nonce();
  const { top } = instantiate(
    `rec {
      dep = sh "del-dep-${n}" "echo dep > $out";
      top = sh "del-top-${n}" "echo \${dep} > $out";
    }`,
    ['top'],
  );
  const [out] = realise(top!);
  const dep = nixCli('nix-store', ['--query', '--references', out!]).toString().trim();
  // The dependency is still referenced by `out`, so it is alive.
  await assert.rejects(
    pool.use((client) => client.deletePaths([dep])),
    (error: unknown) => error instanceof DaemonError && /still alive/.test(error.message),
  );
  const result = await pool.use((client) => client.deletePaths([out!]));
  assert.deepEqual(result.deleted, [out]);
  assert.ok(result.bytesFreed > 0);
  assert.deepEqual((await pool.use((client) => client.deletePaths([dep]))).deleted, [dep]);
  assert.equal(isValidPerNix(out!), false);
  assert.equal(isValidPerNix(dep), false);
});
