/**
 * What verification costs the signer: reading back one staged upload (zstd of a ~512 MiB NAR of a
 * tree of small files and large ones) as activities/signer/inspect.ts does — SHA-256 of the
 * stored bytes, zstd decompression, NAR validation, NAR hash, the reference scan over 64
 * candidates and the `.ls` listing — against `zstd -dc | sha256sum` of the same file in the same
 * run, the least any verifier has to do. Run in this process; peak RSS is printed.
 *
 *   npm run bench -- signer [--runs N] [--dir DIR]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectUpload } from '../activities/signer/inspect.ts';

const VERSION = 'v1';

/** A tree like an output with a few large files and many small ones; built once, then reused. */
function ensureUpload(root: string): { zst: string; narSize: number } {
  const zst = join(root, `upload-${VERSION}.nar.zst`);
  const stamp = `${zst}.narsize`;
  if (existsSync(stamp)) return { zst, narSize: Number(execFileSync('cat', [stamp], { encoding: 'utf8' })) };
  const tree = join(root, `tree-${VERSION}`);
  rmSync(tree, { recursive: true, force: true });
  process.stdout.write(`generating a ~512 MiB output and its zstd NAR in ${root} (once)…\n`);
  const noise = Buffer.alloc(16 << 20);
  let state = 0x2545f491;
  for (let i = 0; i < noise.length; i += 4) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    // Half the bytes repeat: output-like data that zstd compresses somewhat.
    noise.writeUInt32LE(i % 8 === 0 ? state : 0x2f6e6978, i);
  }
  for (let d = 0; d < 40; d++) {
    const dir = join(tree, 'lib', `pkg-${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, `file-${f}`), noise.subarray(f * 997, f * 997 + ((f * 7919) % 32768)));
  }
  mkdirSync(join(tree, 'share'), { recursive: true });
  for (let l = 0; l < 4; l++) writeFileSync(join(tree, 'share', `blob-${l}`), Buffer.concat(Array.from({ length: 8 }, () => noise)));
  const nar = join(root, `upload-${VERSION}.nar`);
  execFileSync('bash', ['-o', 'pipefail', '-c', 'nix-store --dump "$1" > "$2" && zstd -q -3 -f "$2" -o "$3"', 'bash', tree, nar, zst]);
  const narSize = statSync(nar).size;
  rmSync(nar);
  rmSync(tree, { recursive: true, force: true });
  writeFileSync(stamp, String(narSize));
  return { zst, narSize };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function run(args: string[]): Promise<void> {
  const runs = Number(args[args.indexOf('--runs') + 1] ?? 3) || 3;
  const root = args.includes('--dir') ? args[args.indexOf('--dir') + 1]! : join(tmpdir(), 'harmonia-bench-signer');
  mkdirSync(root, { recursive: true });
  const { zst, narSize } = ensureUpload(root);
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  const candidates = Array.from({ length: 64 }, (_, i) => `/nix/store/${Array.from({ length: 32 }, (_, j) => alphabet[(i * 7 + j * 13) % 32]).join('')}-input-${i}`);
  const ours: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < runs; i++) {
    let start = performance.now();
    execFileSync('bash', ['-o', 'pipefail', '-c', 'zstd -dc "$1" | sha256sum > /dev/null', 'bash', zst]);
    baseline.push(performance.now() - start);
    start = performance.now();
    const found = await inspectUpload(createReadStream(zst, { highWaterMark: 1 << 20 }), { candidates, maxNarSize: narSize });
    ours.push(performance.now() - start);
    if (found.narSize !== narSize) throw new Error(`read back ${found.narSize} NAR bytes, expected ${narSize}`);
  }
  const mib = narSize / (1 << 20);
  const line = (name: string, times: number[]): string =>
    `${name.padEnd(34)} median ${(median(times) / 1000).toFixed(2)} s  best ${(Math.min(...times) / 1000).toFixed(2)} s  ${(mib / (median(times) / 1000)).toFixed(0)} MiB/s of NAR`;
  process.stdout.write(`upload: ${mib.toFixed(0)} MiB NAR, ${(statSync(zst).size / (1 << 20)).toFixed(0)} MiB zstd; ${runs} run(s)\n`);
  process.stdout.write(`${line('signer read-back (inspect.ts)', ours)}\n`);
  process.stdout.write(`${line('zstd -dc | sha256sum (baseline)', baseline)}\n`);
  process.stdout.write(`ratio (ours / baseline, median): ${(median(ours) / median(baseline)).toFixed(2)}x\n`);
  process.stdout.write(`peak RSS of this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`);
}
