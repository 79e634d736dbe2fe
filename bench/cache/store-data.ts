/**
 * The Nix store side of `npm run bench -- cache`: a daemon to serve through, and the same shape of
 * data as the directory cache (one big object, many small ones) added to its store, so the
 * store-backed server and the directory one are measured on comparable work.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DAEMON_SOCKET } from '../../daemon/protocol/pool.ts';
import { daemonAnswers, LOCAL_DAEMON_OPTIONS, startNixDaemon, type NixDaemon } from '../../lib/nix-daemon.ts';

/** $NIX_DAEMON_SOCKET_PATH, else the system daemon if one answers, else a private daemon for the run. */
export async function benchDaemon(scratch: string): Promise<{ socketPath: string; daemon?: NixDaemon }> {
  const fromEnv = process.env.NIX_DAEMON_SOCKET_PATH;
  if (fromEnv) return { socketPath: fromEnv };
  if (existsSync(DEFAULT_DAEMON_SOCKET) && (await daemonAnswers(DEFAULT_DAEMON_SOCKET))) return { socketPath: DEFAULT_DAEMON_SOCKET };
  mkdirSync(scratch, { recursive: true });
  const daemon = await startNixDaemon({ dir: scratch });
  return { socketPath: daemon.socketPath, daemon };
}

function nixStoreAdd(socketPath: string, files: string[]): string[] {
  const env = { ...process.env, NIX_REMOTE: `unix://${socketPath}` };
  const out = execFileSync('nix-store', [...LOCAL_DAEMON_OPTIONS, '--add', ...files], { env, maxBuffer: 1 << 28 });
  return out.toString().trim().split('\n');
}

/**
 * Adds `bigFile` and `count` small files to the store (adding is idempotent, so later runs only
 * re-hash); returns the big path's hash part and a lookups file of the small paths' narinfos with
 * one miss for nine hits, as the directory cache's lookups.
 */
export function ensureStoreData(socketPath: string, dir: string, bigFile: string, count: number): { bigHashPart: string; lookups: string } {
  const files = join(dir, 'store-files');
  const lookups = join(dir, 'store-lookups.txt');
  const marker = join(dir, 'store-complete');
  const valid = (path: string): boolean =>
    execFileSync('nix-store', ['--check-validity', '--print-invalid', path], { env: { ...process.env, NIX_REMOTE: `unix://${socketPath}` } }).length === 0;
  if (!existsSync(marker) || !valid(readFileSync(marker, 'utf8').trim())) {
    process.stdout.write(`adding the big object and ${count} small paths to the store behind ${socketPath} (once)…\n`);
    mkdirSync(files, { recursive: true });
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = join(files, `bench-${i}`);
      writeFileSync(name, `bench store object ${i}\n`);
      names.push(name);
    }
    const paths: string[] = [];
    for (let at = 0; at < names.length; at += 1000) paths.push(...nixStoreAdd(socketPath, names.slice(at, at + 1000)));
    const lines: string[] = [];
    paths.forEach((path, i) => {
      lines.push(`/${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`);
      if (i % 9 === 8) lines.push(`/${'0'.repeat(31)}${'abcdfghijk'[i % 10]}.narinfo`);
    });
    writeFileSync(lookups, `${lines.sort(() => Math.random() - 0.5).join('\n')}\n`);
    const [big] = nixStoreAdd(socketPath, [bigFile]);
    writeFileSync(marker, big!);
  }
  const big = readFileSync(marker, 'utf8').trim();
  return { bigHashPart: big.slice('/nix/store/'.length, '/nix/store/'.length + 32), lookups };
}
