/**
 * The binary cache server against a plain static file server (bench/cache/static-server.ts),
 * both measured in this run, each in its own process, on the same files:
 *   1. download of a 1 GiB NAR with curl (--runs rounds alternating the two servers), and our
 *      server's RSS before and at its peak;
 *   2. narinfo lookups per second from --concurrency keep-alive clients (bench/cache/load.ts),
 *      nine hits for one miss, as Nix asks.
 * Goals: at least 0.8× the static server's download throughput; at least 5,000 lookups/s.
 * Then `cache serve --store` over a nix-daemon against the directory cache, in the same run: the
 * big object's NAR (streamed from the daemon) and narinfo lookups (each one a daemon query and an
 * Ed25519 signature) on --narinfos small store paths.
 *
 *   npm run bench -- cache [--size-mb 1024] [--narinfos 10000] [--seconds 10] [--concurrency 64] [--runs 5] [--dir DIR] [--no-store]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheInfoText } from '../cache/layout.ts';
import { formatHash } from '../daemon/core/hash.ts';
import { printNarInfo } from '../daemon/core/narinfo.ts';
import { formatKey, generateKeyPair, signFingerprint } from '../daemon/core/signing.ts';
import { narInfoFingerprint } from '../daemon/core/narinfo.ts';
import { benchDaemon, ensureStoreData } from './cache/store-data.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NAR = 'nar/0000000000000000000000000000000000000000000000000000.nar.zst';

interface Options {
  sizeMb: number;
  narinfos: number;
  seconds: number;
  concurrency: number;
  runs: number;
  dir: string;
}

function parseOptions(args: string[]): Options {
  const value = (flag: string, fallback: string): string => {
    const at = args.indexOf(flag);
    return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
  };
  return {
    sizeMb: Number(value('--size-mb', '1024')),
    narinfos: Number(value('--narinfos', '10000')),
    seconds: Number(value('--seconds', '10')),
    concurrency: Number(value('--concurrency', '64')),
    runs: Number(value('--runs', '5')),
    dir: value('--dir', join(tmpdir(), 'harmonia-bench-cache')),
  };
}

const hash32 = (bytes: number): string => formatHash({ algorithm: 'sha256', digest: randomBytes(bytes) }, 'base32', false);

/** A cache directory with one big NAR and many signed narinfos; made once per size and count. */
async function ensureData(options: Options): Promise<{ cache: string; lookups: string }> {
  const dir = join(options.dir, `v1-${options.sizeMb}m-${options.narinfos}`);
  const cache = join(dir, 'cache');
  const lookups = join(dir, 'lookups.txt');
  if (existsSync(join(dir, 'complete'))) return { cache, lookups };
  process.stdout.write(`generating ${options.sizeMb} MiB NAR and ${options.narinfos} narinfos in ${dir} (once)…\n`);
  mkdirSync(join(cache, 'nar'), { recursive: true });
  writeFileSync(join(cache, 'nix-cache-info'), cacheInfoText());
  const out = createWriteStream(join(cache, NAR));
  const block = randomBytes(1 << 20);
  for (let i = 0; i < options.sizeMb; i++) if (!out.write(block)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  await new Promise<void>((resolve) => out.end(() => resolve()));
  const { secretKey } = generateKeyPair('bench-cache-1');
  const paths: string[] = [];
  for (let i = 0; i < options.narinfos; i++) {
    const hashPart = hash32(20);
    const info = {
      storePath: `/nix/store/${hashPart}-bench-${i}`,
      url: `nar/${hash32(32)}.nar.zst`,
      compression: 'zstd',
      narHash: { algorithm: 'sha256' as const, digest: randomBytes(32) },
      narSize: 1000 + i,
      references: [],
      sigs: [] as string[],
    };
    info.sigs = [signFingerprint(secretKey, narInfoFingerprint(info))];
    writeFileSync(join(cache, `${hashPart}.narinfo`), printNarInfo(info));
    paths.push(`/${hashPart}.narinfo`);
    // One miss for nine hits, as a client asking about closures mostly not cached would not; Nix's pattern.
    if (i % 9 === 8) paths.push(`/${hash32(20)}.narinfo`);
  }
  writeFileSync(lookups, `${paths.sort(() => Math.random() - 0.5).join('\n')}\n`);
  writeFileSync(join(dir, 'complete'), formatKey(secretKey));
  return { cache, lookups };
}

/** Starts a server process and resolves with its base URL once it prints its port or URL. */
export function startServer(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const url = /(http:\/\/[^\s]+)/.exec(text)?.[1] ?? (/^(\d+)\n/.exec(text) ? `http://127.0.0.1:${/^(\d+)\n/.exec(text)![1]}` : undefined);
      if (url) resolve({ url, child });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

const statusField = (pid: number, field: string): number =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const peakRssMiB = (pid: number): number => statusField(pid, 'VmHWM');
const currentRssMiB = (pid: number): number => statusField(pid, 'VmRSS');

/** MiB/s of one curl download of `url`. */
function download(url: string, expected: number): number {
  const result = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { encoding: 'utf8' });
  const [size, seconds] = result.stdout.split(' ').map(Number) as [number, number];
  if (size !== expected) throw new Error(`downloaded ${size} bytes from ${url}, expected ${expected}`);
  return size / (1 << 20) / seconds;
}

/** Downloads from both servers in alternation (a busy machine then slows both alike); best and median of each. */
function compareDownloads(urls: [string, string], runs: number, sizes: [number, number]): Array<{ best: number; median: number }> {
  const speeds: [number[], number[]] = [[], []];
  for (let i = 0; i < runs; i++) urls.forEach((url, at) => speeds[at]!.push(download(url, sizes[at]!)));
  return speeds.map((list) => {
    const sorted = [...list].sort((a, b) => a - b);
    return { best: sorted.at(-1)!, median: sorted[Math.floor(sorted.length / 2)]! };
  });
}

interface LoadResult {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
}

function load(url: string, lookups: string, options: Options): LoadResult {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'cache', 'load.ts'), url, lookups, String(options.seconds), String(options.concurrency)],
    { encoding: 'utf8', cwd: ROOT },
  );
  if (result.status !== 0) throw new Error(`the load generator failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim()) as LoadResult;
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits).padStart(8);

function printLoad(rows: ReadonlyArray<readonly [string, LoadResult]>): void {
  for (const [name, result] of rows) {
    const statuses = Object.entries(result.statuses).map(([status, count]) => `${status}×${count}`).join(' ');
    process.stdout.write(`  ${name.padEnd(18)} ${fmt(result.perSecond)} lookups/s   p50 ${result.p50.toFixed(1)} ms  p99 ${result.p99.toFixed(1)} ms  (${statuses})\n`);
  }
}

/** `cache serve --store` against `cache serve --cache DIR` (already running at `directoryUrl`). */
async function compareStoreServer(options: Options, cache: string, lookups: string, directoryUrl: string): Promise<void> {
  const dataDir = join(cache, '..');
  const { socketPath, daemon } = await benchDaemon(join(options.dir, 'daemon'));
  const keyFile = join(dataDir, 'signing-key');
  writeFileSync(keyFile, readFileSync(join(dataDir, 'complete'), 'utf8'), { mode: 0o600 });
  const store = ensureStoreData(socketPath, dataDir, join(cache, NAR), options.narinfos);
  const server = await startServer(
    process.execPath,
    [join(ROOT, 'bin', 'harmonia-ci.mjs'), 'cache', 'serve', '--store', '--socket', socketPath, '--signing-key', keyFile, '--port', '0'],
    { ...process.env, HARMONIA_CI_LOG_LEVEL: 'warn' },
  );
  try {
    const narInfo = await (await fetch(`${server.url}/${store.bigHashPart}.narinfo`)).text();
    const narUrl = /^URL: (.*)$/m.exec(narInfo)?.[1];
    const narSize = Number(/^NarSize: (\d+)$/m.exec(narInfo)?.[1]);
    if (!narUrl) throw new Error(`the store server has no narinfo for the big object: ${narInfo}`);
    process.stdout.write(`\nstore-backed cache (daemon ${socketPath}) against the directory cache, ${options.runs} rounds alternating\n`);
    download(`${server.url}/${narUrl}`, narSize);
    const idleRss = currentRssMiB(server.child.pid!);
    const [directory, fromStore] = compareDownloads([`${directoryUrl}/${NAR}`, `${server.url}/${narUrl}`], options.runs, [options.sizeMb << 20, narSize]) as [
      { best: number; median: number },
      { best: number; median: number },
    ];
    process.stdout.write(`  NAR directory cache ${fmt(directory.best)} MiB/s best, ${fmt(directory.median)} median\n`);
    process.stdout.write(`  NAR store-backed    ${fmt(fromStore.best)} MiB/s best, ${fmt(fromStore.median)} median\n`);
    process.stdout.write(`  ratio ${(fromStore.best / directory.best).toFixed(2)}× best, ${(fromStore.median / directory.median).toFixed(2)}× median\n`);
    process.stdout.write(`  store-backed RSS ${idleRss.toFixed(0)} MiB before, peak ${peakRssMiB(server.child.pid!).toFixed(0)} MiB while serving it\n`);
    const directoryLoad = load(directoryUrl, lookups, options);
    const storeLoad = load(server.url, store.lookups, options);
    printLoad([
      ['directory cache', directoryLoad],
      ['store-backed', storeLoad],
    ]);
    process.stdout.write(`  ratio ${(storeLoad.perSecond / directoryLoad.perSecond).toFixed(2)}× narinfo lookups/s\n`);
  } finally {
    server.child.kill('SIGTERM');
    await daemon?.stop();
  }
}

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const { cache, lookups } = await ensureData(options);
  const size = options.sizeMb << 20;
  const ours = await startServer(process.execPath, [join(ROOT, 'bin', 'harmonia-ci.mjs'), 'cache', 'serve', '--cache', cache, '--port', '0'], {
    ...process.env,
    HARMONIA_CI_LOG_LEVEL: 'warn',
  });
  const plain = await startServer(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'cache', 'static-server.ts'), cache]);
  try {
    process.stdout.write(`\nNAR download (${options.sizeMb} MiB, curl, ${options.runs} rounds alternating the servers, warm page cache)\n`);
    download(`${plain.url}/${NAR}`, size);
    const idleRss = currentRssMiB(ours.child.pid!);
    const [plainSpeed, ourSpeed] = compareDownloads([`${plain.url}/${NAR}`, `${ours.url}/${NAR}`], options.runs, [size, size]) as [
      { best: number; median: number },
      { best: number; median: number },
    ];
    process.stdout.write(`  static file server ${fmt(plainSpeed.best)} MiB/s best, ${fmt(plainSpeed.median)} median\n`);
    process.stdout.write(`  harmonia-ci        ${fmt(ourSpeed.best)} MiB/s best, ${fmt(ourSpeed.median)} median\n`);
    process.stdout.write(
      `  ratio ${(ourSpeed.best / plainSpeed.best).toFixed(2)}× best, ${(ourSpeed.median / plainSpeed.median).toFixed(2)}× median (goal ≥ 0.80×)\n`,
    );
    process.stdout.write(`  harmonia-ci RSS ${idleRss.toFixed(0)} MiB before, peak ${peakRssMiB(ours.child.pid!).toFixed(0)} MiB while serving it\n`);

    process.stdout.write(`\nnarinfo lookups, ${options.concurrency} concurrent keep-alive clients, ${options.seconds} s, 10% misses\n`);
    const baseline = load(plain.url, lookups, options);
    const measured = load(ours.url, lookups, options);
    printLoad([
      ['static file server', baseline],
      ['harmonia-ci', measured],
    ]);
    process.stdout.write(`  ratio ${(measured.perSecond / baseline.perSecond).toFixed(2)}×; goal ≥ 5,000 lookups/s: ${measured.perSecond >= 5000 ? 'met' : 'NOT met'}\n`);
    if (!args.includes('--no-store')) await compareStoreServer(options, cache, lookups, ours.url);
  } finally {
    ours.child.kill('SIGTERM');
    plain.child.kill('SIGTERM');
  }
}
