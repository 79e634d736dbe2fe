/** Shared test helpers: the real Nix as oracle, temporary directories, and trees to archive. */
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** Options every nix command gets so that it never waits on the (closed) network or build users. */
export const NIX_OPTIONS = ['--option', 'build-users-group', '', '--option', 'substituters', ''];

/** Runs a Nix binary and returns its stdout; fails the test with its stderr otherwise. */
export function nix(command: string, args: string[], input?: Uint8Array): Buffer {
  return execFileSync(command, [...NIX_OPTIONS, ...args], { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** `nix-store --dump <path>` as bytes. */
export function nixDump(path: string | Buffer): Buffer {
  return nix('nix-store', ['--dump', path.toString()]);
}

/** A fresh directory removed when the process exits (also on test failure). */
export function scratchDir(prefix = 'harmonia-nar-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Collects an async byte stream into one buffer. */
export async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Yields a buffer in pieces of `size` bytes, to exercise reads that straddle chunk boundaries. */
export async function* inPieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** An in-memory model of a filesystem tree; names and targets are raw bytes. */
export type TreeNode =
  | { type: 'regular'; contents: Uint8Array; executable: boolean }
  | { type: 'symlink'; target: Uint8Array }
  | { type: 'directory'; entries: Array<[name: Uint8Array, node: TreeNode]> };

/** Creates `node` at `path` (which must not exist). */
export function writeTree(path: Buffer, node: TreeNode): void {
  if (node.type === 'regular') {
    writeFileSync(path, node.contents);
    chmodSync(path, node.executable ? 0o755 : 0o644);
  } else if (node.type === 'symlink') {
    symlinkSync(Buffer.from(node.target), path);
  } else {
    mkdirSync(path);
    for (const [name, child] of node.entries) writeTree(Buffer.concat([path, Buffer.from('/'), name]), child);
  }
}

/** Names whose UTF-8 byte order differs from JS (UTF-16) string order, plus other awkward ones. */
export const AWKWARD_NAMES: readonly Buffer[] = [
  '\u{1F600}', // UTF-16 D83D… sorts before U+FB01, UTF-8 F0… sorts after EF…
  '\uFB01',
  '\uFF5E',
  'é',
  'e\u0301',
  'Z',
  'a',
  'a b',
  '-',
  '~',
  '\x7F',
  'line\nbreak',
  '..a',
  '.hidden',
].map((name) => Buffer.from(name, 'utf8')).concat([Buffer.from([0xff, 0xfe]), Buffer.from([0x80]), Buffer.alloc(255, 0x6e)]);

/** A small deterministic PRNG (mulberry32), so a failing random tree can be reproduced from its seed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random tree mixing every node kind, awkward names, empty and large-ish files. */
export function randomTree(seed: number, depth = 4): TreeNode {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const contents = (): Uint8Array => {
    const roll = next();
    const size = roll < 0.2 ? 0 : roll < 0.9 ? Math.floor(next() * 5000) : Math.floor(next() * 3_000_000);
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) bytes[i] = Math.floor(next() * 256);
    return bytes;
  };
  const node = (level: number): TreeNode => {
    const roll = next();
    if (level < depth && roll < 0.35) {
      const names = new Map<string, Buffer>();
      const count = Math.floor(next() * 7);
      for (let i = 0; i < count; i++) {
        const name = next() < 0.5 ? pick(AWKWARD_NAMES) : Buffer.from(`f${Math.floor(next() * 1000)}`);
        names.set(name.toString('hex'), name);
      }
      return { type: 'directory', entries: [...names.values()].map((name) => [name, node(level + 1)]) };
    }
    if (roll < 0.5) {
      const target = pick(['f1', '../up', '/nix/store/absolute', 'dangling/nowhere', '\u{1F600}', 'x'.repeat(300)]);
      return { type: 'symlink', target: Buffer.from(target) };
    }
    return { type: 'regular', contents: contents(), executable: next() < 0.3 };
  };
  return { type: 'directory', entries: [[Buffer.from('root'), node(0)], [Buffer.from('more'), node(0)]] };
}

/**
 * Writes `node` under `work`, adds it to a throwaway chroot store there, copies it to a
 * file:// cache with `write-nar-listing=true` and returns the NAR file and `.ls` Nix wrote.
 */
export function nixListing(work: string, name: string, node: TreeNode): { narFile: string; listing: Buffer } {
  const source = join(work, name);
  const store = join(work, 'store');
  const cache = join(work, 'cache');
  writeTree(Buffer.from(source), node);
  const storePath = nix('nix-store', ['--store', store, '--add', source]).toString().trim();
  const to = `file://${cache}?write-nar-listing=true&compression=none`;
  nix('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--no-check-sigs', '--from', store, '--to', to, storePath]);
  const hashPart = basename(storePath).slice(0, 32);
  const url = /^URL: (.*)$/m.exec(readFileSync(join(cache, `${hashPart}.narinfo`), 'utf8'))?.[1];
  assert.ok(url, `the narinfo of ${storePath} names its NAR`);
  return { narFile: join(cache, url), listing: readFileSync(join(cache, `${hashPart}.ls`)) };
}
