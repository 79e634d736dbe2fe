/** packNar and narHash against `nix-store --dump` and `nix-hash` on generated trees. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatHash } from '../../daemon/core/hash.ts';
import { NarFileError } from '../../daemon/nar/errors.ts';
import { hashStream, narHash } from '../../daemon/nar/nar-hash.ts';
import { packNar } from '../../daemon/nar/pack.ts';
import type { TreeNode } from './helpers.ts';
import { AWKWARD_NAMES, collect, nix, NIX_OPTIONS, nixDump, randomTree, scratchDir, writeTree } from './helpers.ts';

const work = scratchDir();
let counter = 0;

function materialise(node: TreeNode): Buffer {
  const path = Buffer.from(join(work, `tree-${counter++}`));
  writeTree(path, node);
  return path;
}

async function assertSameAsNix(path: Buffer | string): Promise<void> {
  const ours = await collect(packNar(path));
  const theirs = nixDump(path);
  assert.equal(ours.length, theirs.length, `NAR of ${path.toString()} differs in length from nix-store --dump`);
  assert.ok(ours.equals(theirs), `NAR of ${path.toString()} differs from nix-store --dump`);
}

test('names are ordered by raw bytes, not by JS string order', async () => {
  const entries = AWKWARD_NAMES.map((name): [Uint8Array, TreeNode] => [name, { type: 'regular', contents: name, executable: false }]);
  const path = materialise({ type: 'directory', entries });
  // Guard that the fixture really exercises the difference between the two orders.
  const jsOrder = AWKWARD_NAMES.map((name) => name.toString()).sort();
  const byteOrder = [...AWKWARD_NAMES].sort(Buffer.compare).map((name) => name.toString());
  assert.notDeepEqual(jsOrder, byteOrder);
  await assertSameAsNix(path);
});

test('every node kind: empty files and dirs, executables, dangling, absolute and relative symlinks', async () => {
  const root = join(work, 'kinds');
  mkdirSync(join(root, 'empty-dir', 'nested-empty'), { recursive: true });
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, 'script'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(root, 'user-exec-only'), 'x', { mode: 0o700 });
  writeFileSync(join(root, 'group-exec-only'), 'x', { mode: 0o654 });
  writeFileSync(join(root, 'padding-7'), '1234567');
  writeFileSync(join(root, 'padding-8'), '12345678');
  symlinkSync('/nix/store/does-not-exist', join(root, 'absolute'));
  symlinkSync('nowhere/at/all', join(root, 'dangling'));
  symlinkSync('empty-dir', join(root, 'to-dir'));
  await assertSameAsNix(root);
  await assertSameAsNix(join(root, 'script'));
  await assertSameAsNix(join(root, 'empty-file'));
  await assertSameAsNix(join(root, 'dangling'));
  await assertSameAsNix(join(root, 'empty-dir'));
});

test('deep nesting', async () => {
  let node: TreeNode = { type: 'regular', contents: Buffer.from('bottom'), executable: false };
  for (let depth = 0; depth < 200; depth++) node = { type: 'directory', entries: [[Buffer.from('d'), node]] };
  await assertSameAsNix(materialise(node));
});

test('random trees match nix-store --dump', async () => {
  for (let seed = 1; seed <= 12; seed++) await assertSameAsNix(materialise(randomTree(seed)));
});

test('files straddling the chunk and small-file thresholds', async () => {
  const root = join(work, 'sizes');
  mkdirSync(root);
  for (const size of [131071, 131072, 131073, 1048575, 1048576, 1048577, 2 * 1048576 + 3]) {
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += 997) bytes[i] = i % 251;
    writeFileSync(join(root, `f${size}`), bytes);
  }
  await assertSameAsNix(root);
});

test('narHash equals nix-hash --type sha256 --base32, also for a file of several hundred MB', async () => {
  const big = join(work, 'big');
  mkdirSync(big);
  writeFileSync(join(big, 'small'), 'small file next to a big one');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i += 4093) block[i] = i & 0xff;
  const fd = openSync(join(big, 'big.bin'), 'w');
  try {
    for (let i = 0; i < 300; i++) {
      block.writeUInt32LE(i, 0);
      writeSync(fd, block);
    }
    writeSync(fd, Buffer.from('tail!'));
  } finally {
    closeSync(fd);
  }
  // narHash recycles its chunks: the sizes tree crosses every chunk boundary case.
  for (const path of [big, join(work, 'kinds'), join(work, 'sizes'), materialise(randomTree(99))]) {
    const ours = await narHash(path);
    const theirs = nix('nix-hash', ['--type', 'sha256', '--base32', path.toString()]).toString().trim();
    assert.equal(formatHash(ours.hash, 'base32'), `sha256:${theirs}`, `hash of ${path.toString()}`);
  }
  // The big NAR itself, streamed from nix-store --dump: same SHA-256 and same length as ours.
  const dump = spawn('nix-store', [...NIX_OPTIONS, '--dump', big], { stdio: ['ignore', 'pipe', 'inherit'] });
  const theirs = await hashStream(dump.stdout);
  const ours = await hashStream(packNar(big));
  assert.equal(ours.narSize, theirs.narSize);
  assert.deepEqual(ours.hash, theirs.hash);
  rmSync(big, { recursive: true });
});

test('unsupported file types are refused with the path in the message', async () => {
  const root = join(work, 'fifo');
  mkdirSync(root);
  execFileSync('mkfifo', [join(root, 'pipe')]);
  await assert.rejects(collect(packNar(root)), (error: unknown) => error instanceof NarFileError && /pipe' has an unsupported type/.test(error.message));
});
