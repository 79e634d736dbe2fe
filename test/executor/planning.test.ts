/**
 * Planning against every cache: real derivations instantiated and built by the test nix-daemon,
 * caches written and signed by the real `nix copy`, an upstream served over HTTP by our own cache
 * server, and planMissingBuilds asking the local store, our cache and the upstream caches.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { planMissingBuilds, type ValidityCheck } from '../../activities/evaluator/plan.ts';
import { startCacheServer } from '../../api/cache-server.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { openBinaryCache } from '../../daemon/executor/cache-client.ts';
import { PathLookup, type LookupSource } from '../../daemon/executor/lookup.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { loadServerConfig } from '../../config/server.ts';
import { planningLookupFor, upstreamCachesFor } from '../../workers/caches.ts';
import { daemonSocket, instantiate, nixCli, nixCliResult, nonce, realise, scratchDir } from '../protocol/helpers.ts';
import { generateKey, nixCopyToCache } from './helpers.ts';

const pool = new DaemonPool({ socketPath: daemonSocket() });
test.after(() => pool.close());

const localStore: ValidityCheck = async (paths) => new Set(await pool.use((client) => client.queryValidPaths(paths)));

/** dep ← top: top's build reads dep's output; only dep is built, and then deleted from the local store. */
function depAndTop(): { dep: string; top: string; depOut: string } {
  const n = nonce();
  const drvs = instantiate(`rec { dep = sh "plan-dep-${n}" "echo dep-${n} > $out"; top = sh "plan-top-${n}" "read x < \${dep}; echo $x > $out"; }`, ['dep', 'top']);
  const [depOut] = realise(drvs.dep!);
  return { dep: drvs.dep!, top: drvs.top!, depOut: depOut! };
}

function deleteLocally(path: string): void {
  nixCli('nix-store', ['--delete', path]);
  assert.notEqual(nixCliResult('nix-store', ['--check-validity', path]).status, 0, `${path} deleted`);
}

/** Our cache server over a directory `nix copy` wrote, as an upstream reached over HTTP. */
async function serveDirectory(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = await startCacheServer({ backend: new LocalDirectoryBackend(dir), host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${server.port}`, close: () => server.close() };
}

/** A loopback URL nothing listens on: a port taken and given back. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function lookup(sources: LookupSource[], extra: { warnings?: string[]; now?: () => number; negativeTtlMs?: number } = {}): PathLookup {
  return new PathLookup({
    local: localStore,
    sources,
    negativeTtlMs: extra.negativeTtlMs ?? 30_000,
    positiveTtlMs: 600_000,
    warn: (message) => extra.warnings?.push(message),
    ...(extra.now ? { now: extra.now } : {}),
  });
}

const emptyCache = (): LookupSource => ({ cache: openBinaryCache(`file://${scratchDir('harmonia-empty-cache-')}`) });

test('a derivation whose output is only in our cache gets no build', async () => {
  const { dep, top, depOut } = depAndTop();
  const ours = nixCopyToCache([depOut]);
  deleteLocally(depOut);

  const localOnly = await planMissingBuilds([top], localStore);
  assert.deepEqual([...localOnly.needed].sort(), [dep, top].sort(), 'the local store alone lacks dep: it is planned');
  const plan = await planMissingBuilds([top], (paths) => lookup([{ cache: openBinaryCache(ours.url) }]).available(paths));
  assert.deepEqual([...plan.needed], [top]);
});

test('an output only in an upstream cache over HTTP is not built when signed by its key, and is when signed by another', async () => {
  const upstreamKey = generateKey();
  const stranger = generateKey();
  const { dep, top, depOut } = depAndTop();
  const signed = nixCopyToCache([depOut], { secretKeyFile: upstreamKey.secretKeyFile });
  const forged = nixCopyToCache([depOut], { secretKeyFile: stranger.secretKeyFile });
  deleteLocally(depOut);
  const upstream = await serveDirectory(signed.dir);
  const impostor = await serveDirectory(forged.dir);
  try {
    const trusted = await planMissingBuilds([top], (paths) =>
      lookup([emptyCache(), { cache: openBinaryCache(upstream.url), trustedKeys: [upstreamKey.publicKey] }]).available(paths),
    );
    assert.deepEqual([...trusted.needed], [top]);

    const warnings: string[] = [];
    const untrusted = await planMissingBuilds([top], (paths) =>
      lookup([emptyCache(), { cache: openBinaryCache(impostor.url), trustedKeys: [upstreamKey.publicKey] }], { warnings }).available(paths),
    );
    assert.deepEqual([...untrusted.needed].sort(), [dep, top].sort());
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.ok(warnings[0]!.includes(impostor.url) && warnings[0]!.includes(stranger.publicKey.name) && warnings[0]!.includes(depOut), warnings[0]);
  } finally {
    await upstream.close();
    await impostor.close();
  }
});

test('a miss is remembered for the negative TTL: a path published after it is found once the TTL has passed, not before', async () => {
  const key = generateKey();
  const { depOut } = depAndTop();
  const dir = join(scratchDir('harmonia-ttl-cache-'), 'cache');
  mkdirSync(dir);
  const upstream = await serveDirectory(dir);
  let clock = 1_000_000;
  // No local store here: the path stays valid locally, for nix copy to publish it later.
  const paths = new PathLookup({
    sources: [{ cache: openBinaryCache(upstream.url), trustedKeys: [key.publicKey] }],
    negativeTtlMs: 30_000,
    positiveTtlMs: 600_000,
    warn: (message) => assert.fail(message),
    now: () => clock,
  });
  try {
    assert.deepEqual([...(await paths.available([depOut]))], [], 'not published yet');
    nixCopyToCache([depOut], { dir, secretKeyFile: key.secretKeyFile });
    clock += 29_000;
    assert.deepEqual([...(await paths.available([depOut]))], [], 'the miss is still remembered within the TTL');
    clock += 2_000;
    assert.deepEqual([...(await paths.available([depOut]))], [depOut], 'asked again once the TTL has passed');
  } finally {
    await upstream.close();
  }
});

test('our own cache\'s misses are not remembered: what a build just published counts at once', async () => {
  const key = generateKey();
  const { depOut } = depAndTop();
  const dir = join(scratchDir('harmonia-own-cache-'), 'cache');
  mkdirSync(dir);
  const ours = await serveDirectory(dir);
  const paths = new PathLookup({
    sources: [{ cache: openBinaryCache(ours.url), rememberMisses: false }],
    negativeTtlMs: 30_000,
    positiveTtlMs: 600_000,
    warn: (message) => assert.fail(message),
    now: () => 1_000_000,
  });
  try {
    assert.deepEqual([...(await paths.available([depOut]))], [], 'not published yet');
    nixCopyToCache([depOut], { dir, secretKeyFile: key.secretKeyFile });
    assert.deepEqual([...(await paths.available([depOut]))], [depOut], 'found as soon as it is published');
  } finally {
    await ours.close();
  }
});

test('an unreachable cache is named in a warning, its paths are planned, and the caches after it are still asked', async () => {
  const key = generateKey();
  const { dep, top, depOut } = depAndTop();
  const upstreamDir = nixCopyToCache([depOut], { secretKeyFile: key.secretKeyFile });
  deleteLocally(depOut);
  const dead = await deadUrl();
  const warnings: string[] = [];

  const started = performance.now();
  let asked = 0;
  const deadCache = openBinaryCache(dead);
  let clock = 1_000_000;
  const deadOnly = lookup([{ cache: { url: dead, narInfo: (path) => (asked++, deadCache.narInfo(path)), narFile: (info) => deadCache.narFile(info) } }], {
    warnings,
    now: () => clock,
  });
  const alone = await planMissingBuilds([top], (paths) => deadOnly.available(paths));
  assert.deepEqual([...alone.needed].sort(), [dep, top].sort(), 'what the dead cache might have had is built');
  assert.ok(performance.now() - started < 10_000, 'a refused connection does not hold planning');
  assert.ok(warnings.some((message) => message.includes(dead) && /could not be asked .*not asked again for 30 s/.test(message)), warnings.join('\n'));
  // Left alone for the negative TTL, then asked again.
  const askedBefore = asked;
  await deadOnly.available([depOut]);
  assert.equal(asked, askedBefore, 'not asked within the TTL of its outage');
  clock += 31_000;
  await deadOnly.available([depOut]);
  assert.ok(asked > askedBefore, 'asked again once the TTL has passed');

  const upstream = await serveDirectory(upstreamDir.dir);
  try {
    warnings.length = 0;
    const plan = await planMissingBuilds([top], (paths) =>
      lookup([{ cache: openBinaryCache(dead) }, { cache: openBinaryCache(upstream.url), trustedKeys: [key.publicKey] }], { warnings }).available(paths),
    );
    assert.deepEqual([...plan.needed], [top]);
    assert.ok(warnings.some((message) => message.includes(dead)), warnings.join('\n'));
  } finally {
    await upstream.close();
  }
});

test('each source is asked only about what the ones before it lacked', async () => {
  const key = generateKey();
  const n = nonce();
  const drvs = instantiate(`{ a = sh "plan-a-${n}" "echo a > $out"; b = sh "plan-b-${n}" "echo b > $out"; c = sh "plan-c-${n}" "echo c > $out"; }`, ['a', 'b', 'c']);
  const [a, b, c] = realise(drvs.a!, drvs.b!, drvs.c!) as [string, string, string];
  const ours = nixCopyToCache([b]);
  const upstreamDir = nixCopyToCache([b, c], { secretKeyFile: key.secretKeyFile });
  deleteLocally(b);
  deleteLocally(c);
  const asked: string[][] = [[], []];
  const counting = (url: string, log: string[]) => {
    const cache = openBinaryCache(url);
    return { url, narInfo: (path: string) => (log.push(path), cache.narInfo(path)), narFile: cache.narFile.bind(cache) };
  };
  const found = await lookup([
    { cache: counting(ours.url, asked[0]!) },
    { cache: counting(upstreamDir.url, asked[1]!), trustedKeys: [key.publicKey] },
  ]).available([a, b, c]);
  assert.deepEqual([...found].sort(), [a, b, c].sort());
  assert.deepEqual(asked[0]!.sort(), [b, c].sort(), 'a is valid locally: no cache is asked about it');
  assert.deepEqual(asked[1], [c], 'our cache has b: the upstream is asked only about c');
});

test('from configuration: our local cache directory and cache.upstream given in the environment plan as the evaluator plans', async () => {
  const key = generateKey();
  const n = nonce();
  const drvs = instantiate(
    `rec { ours = sh "plan-ours-${n}" "echo ours > $out"; up = sh "plan-up-${n}" "echo up > $out"; top = sh "plan-cfg-top-${n}" "read x < \${ours}; read y < \${up}; echo $x$y > $out"; }`,
    ['ours', 'up', 'top'],
  );
  const [oursOut, upOut] = realise(drvs.ours!, drvs.up!) as [string, string];
  const stateDir = scratchDir('harmonia-plan-state-');
  const ourCache = nixCopyToCache([oursOut], { dir: join(stateDir, 'cache') });
  const upstream = nixCopyToCache([upOut], { secretKeyFile: key.secretKeyFile });
  deleteLocally(oursOut);
  deleteLocally(upOut);
  const config = await loadServerConfig({
    env: { HARMONIA_CI_STATE_DIR: stateDir, HARMONIA_CI_CACHE_UPSTREAM: `${upstream.url} ${key.publicKeyText}` },
    cwd: stateDir,
  });
  assert.equal(config.cache.url.kind === 'local' && config.cache.url.path, ourCache.dir, 'the default cache is <state-dir>/cache');
  assert.equal(upstreamCachesFor(config)[0]!.cache.url, upstream.url);
  const warnings: string[] = [];
  const lookup = planningLookupFor(config, { daemon: pool, warn: (message) => warnings.push(message) });
  const plan = await planMissingBuilds([drvs.top!], (paths) => lookup.available(paths));
  assert.deepEqual([...plan.needed], [drvs.top]);
  assert.deepEqual(warnings, []);
});

test('a cache that accepts and never answers costs one request timeout, without a retry', async () => {
  const { dep, top, depOut } = depAndTop();
  deleteLocally(depOut);
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => void sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const cache = openBinaryCache(url, { requestMs: 300, idleMs: 300 });
  let asked = 0;
  const warnings: string[] = [];
  try {
    const started = performance.now();
    const paths = lookup([{ cache: { url, narInfo: (path) => (asked++, cache.narInfo(path)), narFile: (info) => cache.narFile(info) } }], { warnings });
    const plan = await planMissingBuilds([top], (wanted) => paths.available(wanted));
    assert.deepEqual([...plan.needed].sort(), [dep, top].sort());
    assert.equal(asked, 1, 'the timed-out lookup is not retried, and the next layer does not ask the silent cache');
    assert.ok(performance.now() - started < 5_000);
    assert.ok(warnings.some((message) => message.includes(url) && /within 300 ms/.test(message)), warnings.join('\n'));
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
