/**
 * Planning 10,000 outputs against our cache server (`harmonia-ci cache serve`, its own process,
 * over a directory of signed narinfos), half of them there, half not: planMissingBuilds over as
 * many `.drv` files, with the lookup planning uses. Measured in this run:
 *   baseline   one narinfo request at a time (a lookup with concurrency 1);
 *   measured   the lookup as configured for planning (--concurrency in flight, keep-alive);
 *   re-plan    the same plan again within the TTLs: answered from memory;
 *   upstream   the same server asked as an upstream cache, each hit's signature verified.
 * Goal: the measured plan under 5 s on a 2-core machine. The local store is not asked (it is one
 * daemon query per layer, and a benchmark needs no daemon).
 *
 *   npm run bench -- plan [--outputs 10000] [--concurrency 48] [--dir DIR]
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planMissingBuilds } from '../activities/evaluator/plan.ts';
import { cacheInfoText } from '../cache/layout.ts';
import { printDerivation } from '../daemon/core/derivation.ts';
import { formatHash } from '../daemon/core/hash.ts';
import { narInfoFingerprint, printNarInfo } from '../daemon/core/narinfo.ts';
import { formatKey, generateKeyPair, parsePublicKey, parseSecretKey, publicKeyOf, signFingerprint } from '../daemon/core/signing.ts';
import { openBinaryCache } from '../daemon/executor/cache-client.ts';
import { DEFAULT_LOOKUP_CONCURRENCY, PathLookup, type LookupSource } from '../daemon/executor/lookup.ts';
import { startServer } from './cache.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Options {
  outputs: number;
  concurrency: number;
  dir: string;
}

function parseOptions(args: string[]): Options {
  const value = (flag: string, fallback: string): string => {
    const at = args.indexOf(flag);
    return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
  };
  return {
    outputs: Number(value('--outputs', '10000')),
    concurrency: Number(value('--concurrency', String(DEFAULT_LOOKUP_CONCURRENCY))),
    dir: value('--dir', join(tmpdir(), 'harmonia-bench-plan')),
  };
}

const hash32 = (bytes: number): string => formatHash({ algorithm: 'sha256', digest: randomBytes(bytes) }, 'base32', false);

/**
 * `outputs` derivations of one output each, all jobs (one layer: every output is asked about), and
 * a cache holding the narinfos of the even ones, signed; made once per count.
 */
function ensureData(options: Options): { cache: string; drvs: string[]; present: number; publicKey: string } {
  const dir = join(options.dir, `v1-${options.outputs}`);
  const cache = join(dir, 'cache');
  const drvDir = join(dir, 'drvs');
  const list = join(dir, 'drvs.txt');
  if (existsSync(join(dir, 'complete'))) {
    const drvs = readFileSync(list, 'utf8').split('\n').filter(Boolean);
    const publicKey = formatKey(publicKeyOf(parseSecretKey(readFileSync(join(dir, 'complete'), 'utf8'))));
    return { cache, drvs, present: Math.ceil(drvs.length / 2), publicKey };
  }
  process.stdout.write(`generating ${options.outputs} derivations and ${Math.ceil(options.outputs / 2)} narinfos in ${dir} (once)…\n`);
  mkdirSync(drvDir, { recursive: true });
  mkdirSync(cache, { recursive: true });
  writeFileSync(join(cache, 'nix-cache-info'), cacheInfoText());
  const { secretKey } = generateKeyPair('bench-plan-1');
  const drvs: string[] = [];
  for (let i = 0; i < options.outputs; i++) {
    const name = `bench-plan-${i}`;
    const out = `/nix/store/${hash32(20)}-${name}`;
    const text = printDerivation({
      outputs: new Map([['out', { path: out, hashAlgo: '', hash: '' }]]),
      inputDrvs: new Map(),
      inputSrcs: [],
      platform: 'x86_64-linux',
      builder: '/bin/sh',
      args: ['-c', 'echo > $out'],
      env: new Map([
        ['builder', '/bin/sh'],
        ['name', name],
        ['out', out],
        ['system', 'x86_64-linux'],
      ]),
    });
    // planMissingBuilds reads each `.drv` by its path; a directory outside the store does as well.
    const drv = join(drvDir, `${hash32(20)}-${name}.drv`);
    writeFileSync(drv, text);
    drvs.push(drv);
    if (i % 2 !== 0) continue;
    const info = {
      storePath: out,
      url: `nar/${hash32(32)}.nar.zst`,
      compression: 'zstd',
      narHash: { algorithm: 'sha256' as const, digest: randomBytes(32) },
      narSize: 1000 + i,
      references: [],
      sigs: [] as string[],
    };
    info.sigs = [signFingerprint(secretKey, narInfoFingerprint(info))];
    writeFileSync(join(cache, `${out.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`), printNarInfo(info));
  }
  writeFileSync(list, `${drvs.join('\n')}\n`);
  writeFileSync(join(dir, 'complete'), formatKey(secretKey));
  return { cache, drvs, present: Math.ceil(options.outputs / 2), publicKey: formatKey(publicKeyOf(secretKey)) };
}

async function timedPlan(drvs: string[], lookup: PathLookup, expectedNeeded: number): Promise<number> {
  const started = performance.now();
  const plan = await planMissingBuilds(drvs, (paths) => lookup.available(paths));
  const seconds = (performance.now() - started) / 1000;
  if (plan.needed.size !== expectedNeeded) throw new Error(`planned ${plan.needed.size} builds, expected ${expectedNeeded}: the lookup is wrong`);
  return seconds;
}

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const { cache, drvs, present, publicKey } = ensureData(options);
  const server = await startServer(process.execPath, [join(ROOT, 'bin', 'harmonia-ci.mjs'), 'cache', 'serve', '--cache', cache, '--port', '0'], {
    ...process.env,
    HARMONIA_CI_LOG_LEVEL: 'warn',
  });
  const warn = (message: string): void => void process.stderr.write(`warning: ${message}\n`);
  const lookupWith = (source: LookupSource, concurrency: number): PathLookup =>
    new PathLookup({ sources: [source], concurrency, negativeTtlMs: 30_000, positiveTtlMs: 600_000, warn });
  const ours = (): LookupSource => ({ cache: openBinaryCache(server.url) });
  const needed = drvs.length - present;
  try {
    process.stdout.write(`\nplanning ${drvs.length} outputs (${present} in the cache, ${needed} not) against ${server.url} (harmonia-ci cache serve)\n`);
    // Warm-up: the server's and this process's code paths, the page cache.
    await timedPlan(drvs.slice(0, 500), lookupWith(ours(), options.concurrency), drvs.slice(0, 500).length - Math.ceil(500 / 2));

    const baseline = await timedPlan(drvs, lookupWith(ours(), 1), needed);
    const lookup = lookupWith(ours(), options.concurrency);
    const measured = await timedPlan(drvs, lookup, needed);
    const replan = await timedPlan(drvs, lookup, needed);
    const upstream = await timedPlan(drvs, lookupWith({ cache: openBinaryCache(server.url), trustedKeys: [parsePublicKey(publicKey)] }, options.concurrency), needed);

    const line = (name: string, seconds: number, note: string): void =>
      void process.stdout.write(`  ${name.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s  ${(drvs.length / seconds).toFixed(0).padStart(7)} outputs/s  ${note}\n`);
    line('baseline: one request at a time', baseline, '');
    line(`our cache, ${options.concurrency} in flight`, measured, `${(measured / baseline).toFixed(3)}× baseline`);
    line('re-plan within the TTLs', replan, 'from memory');
    line(`as an upstream, signatures checked`, upstream, `${present} signatures verified`);
    process.stdout.write(`  goal < 5 s for ${drvs.length} outputs: ${measured < 5 ? 'met' : 'NOT met'}\n`);
  } finally {
    server.child.kill('SIGTERM');
  }
}
