/**
 * NAR pack + SHA-256 of a ~1 GB tree (many small files, a few large ones) against
 * `nix-store --dump <tree> | sha256sum`, both measured in this run on a warm page cache.
 * Ours runs in a child process so that its peak RSS is its own. `nix-hash` (Nix hashing
 * in-process with OpenSSL, no pipe) is printed as a second, stricter reference.
 *
 *   npm run bench -- nar [--runs N] [--dir DIR]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatHash } from '../daemon/core/hash.ts';
import { narHash } from '../daemon/nar/nar-hash.ts';

const TREE_VERSION = 'v1';
const SMALL_DIRS = 25;
const SMALL_SUBDIRS = 20;
const SMALL_FILES_PER_DIR = 100;
const SMALL_FILE_MAX = 16 << 10;
const LARGE_FILES = 6;
const LARGE_FILE_SIZE = 100 << 20;

interface ChildResult {
  hash: string;
  narSize: number;
  ms: number;
  maxRssKiB: number;
}

/** Builds the tree once; a stamp file marks a complete generation, so an interrupted one is redone. */
function ensureTree(root: string): string {
  const tree = join(root, `tree-${TREE_VERSION}`);
  const stamp = `${tree}.complete`;
  if (existsSync(stamp)) return tree;
  rmSync(tree, { recursive: true, force: true });
  process.stdout.write(`generating a ~1 GB tree in ${tree} (once)…\n`);
  const noise = Buffer.alloc(32 << 20);
  let state = 0x9e3779b9;
  for (let i = 0; i < noise.length; i += 4) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    noise.writeUInt32LE(state, i);
  }
  let cursor = 0;
  const slice = (size: number): Buffer => {
    cursor = (cursor + 7919) % (noise.length - size);
    return noise.subarray(cursor, cursor + size);
  };
  for (let d = 0; d < SMALL_DIRS; d++) {
    for (let s = 0; s < SMALL_SUBDIRS; s++) {
      const dir = join(tree, `pkg-${d}`, `lib-${s}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < SMALL_FILES_PER_DIR; f++) {
        writeFileSync(join(dir, `file-${f}.dat`), slice((f * 2654435761) % SMALL_FILE_MAX), { mode: f % 10 === 0 ? 0o755 : 0o644 });
      }
      symlinkSync('file-0.dat', join(dir, 'link'));
    }
  }
  mkdirSync(join(tree, 'large'));
  for (let l = 0; l < LARGE_FILES; l++) {
    const parts: Buffer[] = [];
    for (let written = 0; written < LARGE_FILE_SIZE; written += 8 << 20) parts.push(slice(8 << 20));
    writeFileSync(join(tree, 'large', `blob-${l}.bin`), Buffer.concat(parts));
  }
  writeFileSync(stamp, '');
  return tree;
}

function timeNix(tree: string): { hash: string; ms: number } {
  const start = performance.now();
  const output = execFileSync('bash', ['-o', 'pipefail', '-c', 'nix-store --dump "$1" | sha256sum', 'bash', tree], { encoding: 'utf8' });
  const ms = performance.now() - start;
  return { hash: output.split(' ')[0]!, ms };
}

/** A stronger reference: Nix hashing the NAR in-process with OpenSSL, no pipe. */
function timeNixHash(tree: string): number {
  const start = performance.now();
  execFileSync('nix-hash', ['--type', 'sha256', tree]);
  return performance.now() - start;
}

function timeOurs(tree: string): ChildResult & { wallMs: number } {
  const start = performance.now();
  const self = fileURLToPath(new URL('./run.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', self, 'nar', '--child', tree], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const wallMs = performance.now() - start;
  if (child.status !== 0) throw new Error(`the measuring child failed with status ${child.status}`);
  return { ...(JSON.parse(child.stdout) as ChildResult), wallMs };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Child mode: pack + hash once and report the time and this process's peak RSS. */
async function child(tree: string): Promise<void> {
  const start = performance.now();
  const result = await narHash(tree);
  const ms = performance.now() - start;
  const report: ChildResult = { hash: formatHash(result.hash, 'base16', false), narSize: result.narSize, ms, maxRssKiB: process.resourceUsage().maxRSS };
  process.stdout.write(JSON.stringify(report));
}

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--child') return child(args[1]!);
  const option = (name: string): string | undefined => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const runs = Number(option('--runs') ?? 3);
  const tree = ensureTree(option('--dir') ?? join(tmpdir(), 'harmonia-ci-bench-nar'));
  process.stdout.write('warming the page cache…\n');
  timeNix(tree);
  const nixTimes: number[] = [];
  const ourTimes: number[] = [];
  const wallTimes: number[] = [];
  const nixHashTimes: number[] = [];
  let peakKiB = 0;
  let narSize = 0;
  for (let i = 0; i < runs; i++) {
    const theirs = timeNix(tree);
    const ours = timeOurs(tree);
    nixHashTimes.push(timeNixHash(tree));
    if (ours.hash !== theirs.hash) throw new Error(`hash mismatch: ours ${ours.hash}, nix-store ${theirs.hash}`);
    nixTimes.push(theirs.ms);
    ourTimes.push(ours.ms);
    wallTimes.push(ours.wallMs);
    peakKiB = Math.max(peakKiB, ours.maxRssKiB);
    narSize = ours.narSize;
    process.stdout.write(`run ${i + 1}: nix-store --dump | sha256sum ${theirs.ms.toFixed(0)} ms, packNar + sha256 ${ours.ms.toFixed(0)} ms\n`);
  }
  const nixMs = median(nixTimes);
  const ourMs = median(ourTimes);
  const ratio = ourMs / nixMs;
  const peakMiB = peakKiB / 1024;
  process.stdout.write(
    [
      `NAR size: ${(narSize / 2 ** 20).toFixed(0)} MiB, ${SMALL_DIRS * SMALL_SUBDIRS * SMALL_FILES_PER_DIR} small files + ${LARGE_FILES} × ${LARGE_FILE_SIZE >> 20} MiB`,
      `baseline  nix-store --dump | sha256sum : ${nixMs.toFixed(0)} ms (median of ${runs})`,
      `ours      packNar + SHA-256            : ${ourMs.toFixed(0)} ms (median; ${median(wallTimes).toFixed(0)} ms with Node start-up)`,
      `reference nix-hash --type sha256       : ${median(nixHashTimes).toFixed(0)} ms (median; Nix hashing in-process, no pipe)`,
      `ratio ours / nix: ${ratio.toFixed(2)} (goal ≤ 1.25) ${ratio <= 1.25 ? 'MET' : 'MISSED'}`,
      `our peak RSS: ${peakMiB.toFixed(0)} MiB (goal < 200) ${peakMiB < 200 ? 'MET' : 'MISSED'}`,
      '',
    ].join('\n'),
  );
}
