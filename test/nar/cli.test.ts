/** `harmonia-ci nar …` as a subprocess, piped to and from the real nix-store. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { test } from 'node:test';
import { directory, entry, MAGIC, nar, regular } from './craft.ts';
import { nix, nixDump, nixListing, randomTree, scratchDir, writeTree } from './helpers.ts';

const CLI = fileURLToPath(new URL('../../bin/harmonia-ci.mjs', import.meta.url));
const NIX = `nix-store --option build-users-group '' --option substituters ''`;
const work = scratchDir();
const tree = join(work, 'tree');
writeTree(Buffer.from(tree), randomTree(42));

/** Runs a shell pipeline (paths here never need quoting) and fails on any stage's failure. */
function shell(script: string, input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', script], { input, maxBuffer: 1 << 28 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

test('nar dump | nix-store --restore recreates the tree', () => {
  const dest = join(work, 'restored-by-nix');
  const result = shell(`node ${CLI} nar dump ${tree} | ${NIX} --restore ${dest}`);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(nixDump(dest).equals(nixDump(tree)));
});

test('nix-store --dump | nar restore recreates the tree', () => {
  const dest = join(work, 'restored-by-us');
  const result = shell(`${NIX} --dump ${tree} | node ${CLI} nar restore ${dest}`);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(nixDump(dest).equals(nixDump(tree)));
});

test('nar restore refuses a hostile archive with a clear message and leaves nothing behind', () => {
  const dest = join(work, 'hostile');
  const archive = nar(MAGIC, directory(entry('..', regular('escaped'))));
  const result = shell(`node ${CLI} nar restore ${dest}`, archive);
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /refusing to restore into '.*hostile': invalid NAR at byte 128: entry name '\.\.' is not allowed/);
  assert.equal(existsSync(dest), false);
  assert.equal(existsSync(join(work, 'escaped')), false);
});

test('nar hash prints what nix-hash prints, with the sha256: prefix', () => {
  const result = shell(`node ${CLI} nar hash ${tree}`);
  assert.equal(result.status, 0, result.stderr);
  const expected = nix('nix-hash', ['--type', 'sha256', '--base32', tree]).toString().trim();
  assert.equal(result.stdout.toString(), `sha256:${expected}\n`);
});

test('nar ls prints the .ls listing Nix writes to a binary cache', () => {
  const { narFile, listing } = nixListing(work, 'listed', randomTree(43));
  const result = shell(`node ${CLI} nar ls ${narFile}`);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.equals(listing));
});

test('nar dump into a closed pipe stops quietly', () => {
  const big = join(work, 'big');
  writeFileSync(big, Buffer.alloc(32 << 20));
  const result = shell(`node ${CLI} nar dump ${big} | head -c 10 > /dev/null`);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
});

test('nar dump of a missing path names it', () => {
  const result = shell(`node ${CLI} nar dump ${join(work, 'missing')}`);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /cannot dump '.*missing': no such file or directory/);
});
