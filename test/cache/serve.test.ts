/**
 * The cache routes inside the real API app (test database, runner's Temporal) on a real listener:
 * they sit beside `/healthz` and `/ci/` without shadowing them, answer with Nix's content types,
 * serve NAR ranges, decompress logs for clients that do not take zstd, and stream a large NAR
 * in bounded memory.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { execa } from 'execa';
import type { FastifyInstance } from 'fastify';
import { buildLogPath, createUploadActivities, prepareStaging } from '../../activities/builder/upload.ts';
import { initialiseCache } from '../../activities/signer/index.ts';
import { buildApp } from '../../api/app.ts';
import { readText } from '../../cache/backend-reader.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { logKey, narInfoKey } from '../../cache/layout.ts';
import { loadServerConfig } from '../../config/server.ts';
import { formatHash } from '../../daemon/core/hash.ts';
import { generateKeyPair } from '../../daemon/core/signing.ts';
import { createLogger } from '../../lib/log.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { buildOutputs, signerOnTestStore, tempDir } from './helpers.ts';

describe('cache routes in the API app', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let database: TestDatabase;
  let temporal: Client;
  let app: FastifyInstance;
  let base: string;
  let backend: LocalDirectoryBackend;
  let built: Awaited<ReturnType<typeof buildOutputs>>;
  let narUrl: string;
  let nar: Buffer;

  before(async () => {
    tmp = await tempDir('serve');
    database = await createTestDatabase();
    temporal = await connectTemporal({ address: requireEnv('TEMPORAL_ADDRESS'), namespace: 'default' });
    backend = new LocalDirectoryBackend(join(tmp.dir, 'cache'));
    built = await buildOutputs(tmp.dir);
    const key = generateKeyPair('serve-test-1');
    const signer = signerOnTestStore(backend, key.secretKey);
    await initialiseCache(backend);
    const stagingDir = join(tmp.dir, 'staging');
    await prepareStaging(stagingDir);
    const host = createUploadActivities({ stagingDir });
    await writeFile(buildLogPath(stagingDir, built.topDrv), 'a log line\n'.repeat(1000));
    const staged = await host.stageOutputs({ drvPath: built.topDrv, system: 'x86_64-linux', outputs: [built.top] });
    await host.uploadOutputs({ drvPath: built.topDrv, plan: await signer.prepareUpload(staged) });
    await signer.publish(staged);
    await signer.pool.close();
    narUrl = /^URL: (.*)$/m.exec((await readText(backend, narInfoKey(built.top.path)))!)![1]!;
    nar = Buffer.from(await (await backend.get(narUrl))!.body.toArray().then((chunks) => Buffer.concat(chunks as Buffer[])));

    const config = await loadServerConfig({ env: { DATABASE_URL: database.url, TEMPORAL_ADDRESS: requireEnv('TEMPORAL_ADDRESS') } });
    app = buildApp({ config, log: createLogger({ level: 'silent' }), deps: { pool: database.pool, temporal, cacheStorage: backend } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await app?.close();
    await temporal?.connection.close();
    await database?.drop();
    await tmp?.remove();
  });

  it('leaves the app routes alone and answers cache paths with Nix content types', async () => {
    const health = await fetch(`${base}/healthz`);
    assert.match(health.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(((await health.json()) as { components: Record<string, { status: string }> }).components.cacheStorage?.status, 'ok');
    assert.match((await fetch(`${base}/ci/`)).headers.get('content-type') ?? '', /text\/html/);

    const info = await fetch(`${base}/nix-cache-info`);
    assert.equal(info.headers.get('content-type'), 'text/x-nix-cache-info');
    assert.match(await info.text(), /^StoreDir: \/nix\/store\nWantMassQuery: 1\nPriority: \d+\n$/);

    const hash = built.top.path.slice(11, 43);
    const narinfo = await fetch(`${base}/${hash}.narinfo`);
    assert.equal(narinfo.status, 200);
    assert.equal(narinfo.headers.get('content-type'), 'text/x-nix-narinfo');
    assert.match(await narinfo.text(), new RegExp(`^StorePath: ${built.top.path}$`, 'm'));
    const head = await fetch(`${base}/${hash}.narinfo`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');

    const absent = formatHash({ algorithm: 'sha1', digest: randomBytes(20) }, 'base32', false);
    assert.equal((await fetch(`${base}/${absent}.narinfo`)).status, 404);
    assert.equal((await fetch(`${base}/${absent}.narinfo`, { method: 'HEAD' })).status, 404);
    assert.equal((await fetch(`${base}/not-a-hash.narinfo`)).status, 404);
    assert.equal((await fetch(`${base}/nar/..%2F..%2Fetc%2Fpasswd`)).status, 404);
  });

  it('streams NARs whole and in ranges', async () => {
    const whole = await fetch(`${base}/${narUrl}`);
    assert.equal(whole.headers.get('content-type'), 'application/x-nix-nar');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.equal(Number(whole.headers.get('content-length')), nar.length);
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), nar);

    const part = await fetch(`${base}/${narUrl}`, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${nar.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), nar.subarray(10, 20));
    const suffix = await fetch(`${base}/${narUrl}`, { headers: { range: 'bytes=-100' } });
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), nar.subarray(nar.length - 100));
    const resume = await fetch(`${base}/${narUrl}`, { headers: { range: `bytes=${nar.length - 5}-` } });
    assert.deepEqual(Buffer.from(await resume.arrayBuffer()), nar.subarray(nar.length - 5));
    const beyond = await fetch(`${base}/${narUrl}`, { headers: { range: `bytes=${nar.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${nar.length}`);
    const head = await fetch(`${base}/${narUrl}`, { method: 'HEAD' });
    assert.equal(Number(head.headers.get('content-length')), nar.length);
  });

  it('decompresses logs unless the client accepts zstd', async () => {
    const url = `${base}/${logKey(built.topDrv)}`;
    const plain = await fetch(url, { headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(plain.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(plain.headers.get('content-encoding'), null);
    assert.equal(await plain.text(), 'a log line\n'.repeat(1000));
    // fetch would decode zstd itself if it could; read the raw bytes with curl instead.
    const raw = await execa('curl', ['-s', '-H', 'Accept-Encoding: zstd', '-D', '-', '-o', join(tmp.dir, 'log.zst'), url]);
    assert.match(raw.stdout, /content-encoding: zstd/i);
    const decoded = await execa('zstd', ['-d', '-c', join(tmp.dir, 'log.zst')]);
    assert.equal(`${decoded.stdout}\n`, 'a log line\n'.repeat(1000));
    assert.equal((await fetch(`${base}/log/${'0'.repeat(32)}-absent.drv`)).status, 404);
  });

  it('streams a 256 MiB NAR in bounded memory', async () => {
    const key = `nar/${formatHash({ algorithm: 'sha256', digest: randomBytes(32) }, 'base32', false)}.nar.zst`;
    await mkdir(join(tmp.dir, 'cache', 'nar'), { recursive: true });
    const file = createWriteStream(join(tmp.dir, 'cache', key));
    const block = randomBytes(1 << 20);
    for (let i = 0; i < 256; i++) if (!file.write(block)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
    await new Promise<void>((resolve) => file.end(() => resolve()));

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const response = await fetch(`${base}/${key}`);
    let received = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) received += chunk.length;
    clearInterval(sampler);
    assert.equal(received, 256 << 20);
    assert.ok(peak - before < 96 << 20, `serving 256 MiB grew the process by ${((peak - before) / (1 << 20)).toFixed(0)} MiB`);
  });
});
