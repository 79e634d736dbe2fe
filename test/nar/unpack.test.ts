/** unpackNar against `nix-store --restore`, and the parser on hand-crafted hostile archives. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NarError, NarFileError } from '../../daemon/nar/errors.ts';
import { packNar } from '../../daemon/nar/pack.ts';
import { validateNar } from '../../daemon/nar/parse.ts';
import { unpackNar } from '../../daemon/nar/unpack.ts';
import { directory, entry, MAGIC, nar, regular, str, symlink, u64 } from './craft.ts';
import { AWKWARD_NAMES, collect, inPieces, nix, NIX_OPTIONS, nixDump, randomTree, scratchDir, writeTree } from './helpers.ts';

const work = scratchDir();
let counter = 0;
const fresh = (label: string): string => join(work, `${label}-${counter++}`);

/** Type and permission bits of every path below `root`, keyed by relative path. */
function modes(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (relative: Buffer): void => {
    const path = Buffer.concat([Buffer.from(root), relative]);
    const stat = lstatSync(path);
    out.set(relative.toString('hex'), stat.mode);
    if (stat.isDirectory()) for (const name of readdirSync(path, { encoding: 'buffer' })) walk(Buffer.concat([relative, Buffer.from('/'), name]));
  };
  walk(Buffer.alloc(0));
  return out;
}

async function assertUnpacksLikeNix(archive: Buffer, pieceSize = 65536): Promise<void> {
  const ours = fresh('ours');
  const theirs = fresh('theirs');
  const digest = await unpackNar(inPieces(archive, pieceSize), ours);
  nix('nix-store', ['--restore', theirs], archive);
  assert.ok(nixDump(ours).equals(archive), 'our unpacked tree dumps back to the same NAR');
  assert.ok(nixDump(theirs).equals(archive), 'sanity: nix-store --restore round-trips');
  assert.deepEqual(modes(ours), modes(theirs), 'same file types and permissions as nix-store --restore');
  assert.equal(digest.narSize, archive.length);
}

test('unpacking nix-store --dump output equals nix-store --restore', async () => {
  for (let seed = 100; seed < 108; seed++) {
    const source = fresh('source');
    writeTree(Buffer.from(source), randomTree(seed));
    await assertUnpacksLikeNix(nixDump(source));
  }
});

test('unpacking our own NAR, fed in odd piece sizes, equals nix-store --restore', async () => {
  const source = fresh('source');
  const entries = AWKWARD_NAMES.map((name, i): [Uint8Array, Parameters<typeof writeTree>[1]] => [
    name,
    i % 3 === 0 ? { type: 'symlink', target: Buffer.from('../target') } : { type: 'regular', contents: Buffer.alloc(i * 3, i), executable: i % 2 === 0 },
  ]);
  writeTree(Buffer.from(source), { type: 'directory', entries: [...entries, [Buffer.from('empty'), { type: 'directory', entries: [] }]] });
  const archive = await collect(packNar(source));
  for (const size of [1, 7, 13, 4096]) await assertUnpacksLikeNix(archive, size);
});

test('a single file or symlink at the root', async () => {
  await assertUnpacksLikeNix(nar(MAGIC, regular('#!/bin/sh\n', true)));
  await assertUnpacksLikeNix(nar(MAGIC, regular('')));
  await assertUnpacksLikeNix(nar(MAGIC, symlink('/nix/store/somewhere')));
});

test('an existing destination is refused and left alone', async () => {
  const dest = fresh('exists');
  writeFileSync(dest, 'keep me');
  await assert.rejects(unpackNar(inPieces(nar(MAGIC, regular('x')), 64), dest), NarFileError);
  assert.equal(lstatSync(dest).size, 7);
});

interface HostileCase {
  name: string;
  /** Bytes before the problem: the error must point at their length. */
  before: Buffer;
  after: Buffer;
  reason: RegExp;
  /** Whether Nix 2.8 refuses it too; where it does not, newer Nix does and so do we. */
  nixRefuses: boolean;
}

const DIR_ENTRY = nar(MAGIC, '(', 'type', 'directory', 'entry', '(', 'name');
const FILE_X = nar('node', regular('x'), ')', ')');
const REGULAR = nar(MAGIC, '(', 'type', 'regular', 'contents');

const HOSTILE: HostileCase[] = [
  { name: 'wrong magic', before: Buffer.alloc(0), after: nar('nix-archive-2', regular('x')), reason: /not a NAR/, nixRefuses: true },
  { name: 'empty name', before: DIR_ENTRY, after: nar(str(''), FILE_X), reason: /entry name is empty/, nixRefuses: true },
  { name: 'name .', before: DIR_ENTRY, after: nar('.', FILE_X), reason: /entry name '\.' is not allowed/, nixRefuses: true },
  { name: 'name ..', before: DIR_ENTRY, after: nar('..', FILE_X), reason: /entry name '\.\.' is not allowed/, nixRefuses: true },
  { name: 'name with /', before: DIR_ENTRY, after: nar('sub/file', FILE_X), reason: /contains '\/'/, nixRefuses: true },
  { name: 'name with NUL', before: DIR_ENTRY, after: nar('a\0b', FILE_X), reason: /contains a NUL byte/, nixRefuses: true },
  { name: 'name longer than NAME_MAX', before: DIR_ENTRY, after: nar('n'.repeat(256), FILE_X), reason: /256 bytes long, more than the limit of 255/, nixRefuses: true },
  { name: 'non-zero padding in a name', before: Buffer.concat([DIR_ENTRY, u64(1n), Buffer.from('a')]), after: nar(Buffer.from('\x01\0\0\0\0\0\0'), FILE_X), reason: /non-zero padding after an entry name/, nixRefuses: true },
  { name: 'non-zero padding after contents', before: Buffer.concat([REGULAR, u64(3n), Buffer.from('abc')]), after: nar(Buffer.from('\0\0\0\0\x09'), ')'), reason: /non-zero padding after file contents/, nixRefuses: true },
  { name: 'unknown node type', before: nar(MAGIC, '(', 'type'), after: nar('fifo', ')'), reason: /expected 'regular' or 'directory' or 'symlink', found "fifo"/, nixRefuses: true },
  { name: 'unknown field', before: nar(MAGIC, '(', 'type', 'regular'), after: nar('mode', '644', 'contents', str('x'), ')'), reason: /expected 'executable' or 'contents', found "mode"/, nixRefuses: true },
  { name: 'non-empty executable marker', before: nar(MAGIC, '(', 'type', 'regular', 'executable'), after: nar('yes', 'contents', str('x'), ')'), reason: /executable marker must be empty/, nixRefuses: true },
  { name: 'absurd name length', before: DIR_ENTRY, after: u64(1n << 40n), reason: /1099511627776 bytes long/, nixRefuses: true },
  { name: 'absurd file size', before: REGULAR, after: u64(1n << 62n), reason: /file size is absurdly large/, nixRefuses: true },
  { name: 'absurd tag length', before: nar(MAGIC, '('), after: u64(5000n), reason: /expected 'type', found a string of 5000 bytes/, nixRefuses: true },
  { name: 'symlink target with NUL', before: nar(MAGIC, '(', 'type', 'symlink', 'target'), after: nar('a\0b', ')'), reason: /symlink target .* contains a NUL byte/, nixRefuses: false },
  { name: 'truncated in the contents', before: Buffer.concat([REGULAR, u64(100n), Buffer.from('only a few bytes')]), after: Buffer.alloc(0), reason: /input ends in the middle of file contents/, nixRefuses: true },
  { name: 'truncated after a node', before: nar(MAGIC, '(', 'type', 'directory'), after: Buffer.alloc(0), reason: /input ends in the middle of the length of the tag 'entry' or '\)' \(truncated archive\)/, nixRefuses: true },
  {
    name: 'duplicate entry that would turn a symlink into a way out',
    before: nar(MAGIC, '(', 'type', 'directory', entry('x', symlink('/tmp')), 'entry', '(', 'name'),
    after: nar('x', 'node', directory(entry('pwned', regular('gotcha'))), ')', ')'),
    reason: /duplicate entry name "x"/,
    nixRefuses: true,
  },
  { name: 'unsorted entries', before: nar(MAGIC, '(', 'type', 'directory', entry('b', regular('1')), 'entry', '(', 'name'), after: nar('a', FILE_X), reason: /entry "a" comes after "b"/, nixRefuses: false },
  { name: 'entries in JS string order', before: nar(MAGIC, '(', 'type', 'directory', entry('\u{1F600}', regular('1')), 'entry', '(', 'name'), after: nar('\uFB01', FILE_X), reason: /must be sorted by their bytes/, nixRefuses: false },
  { name: 'trailing bytes', before: nar(MAGIC, regular('x')), after: Buffer.from('more'), reason: /unexpected bytes after the end of the archive/, nixRefuses: false },
];

for (const hostile of HOSTILE) {
  test(`hostile archive refused: ${hostile.name}`, async () => {
    const archive = Buffer.concat([hostile.before, hostile.after]);
    const isExpected = (error: unknown): boolean => {
      assert.ok(error instanceof NarError, `expected a NarError, got ${String(error)}`);
      assert.match(error.reason, hostile.reason);
      assert.equal(error.offset, hostile.before.length, `offset of: ${error.message}`);
      return true;
    };
    await assert.rejects(validateNar(inPieces(archive, 5)), isExpected);

    const sandbox = fresh('sandbox');
    mkdirSync(join(sandbox, 'outside'), { recursive: true });
    const target = join(sandbox, 'target');
    await assert.rejects(unpackNar(inPieces(archive, 4096), target), isExpected);
    assert.deepEqual(readdirSync(sandbox), ['outside'], 'nothing is left next to the target');
    assert.deepEqual(readdirSync(join(sandbox, 'outside')), [], 'nothing was written outside');
    assert.equal(existsSync('/tmp/pwned'), false);

    const nixResult = spawnSync('nix-store', [...NIX_OPTIONS, '--restore', join(sandbox, 'by-nix')], { input: archive });
    assert.equal(nixResult.status !== 0, hostile.nixRefuses, `nix-store --restore ${hostile.nixRefuses ? 'refuses' : 'accepts'} this archive`);
  });
}
