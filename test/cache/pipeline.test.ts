/**
 * The cache at the end of real CI runs (runner's Temporal, PostgreSQL, nix-daemon, SeaweedFS):
 * `harmonia-ci run` with `--cache` and `--signing-key`, then `harmonia-ci cache serve`, then the
 * real `nix-store -r` fetching every output into a store that never held them; the same through
 * S3; and a signer killed mid-publish, which leaves no narinfo without its NAR, and the builds
 * complete once a signer is back.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { execa } from 'execa';
import { openSigner } from '../../activities/signer/setup.ts';
import type { SignerActivities } from '../../activities/types.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { daemonSocket } from '../protocol/helpers.ts';
import { startLocalEval } from '../../cli/run-progress.ts';
import type { RunSummary } from '../../cli/run-progress.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { createSignerWorker, runWorkers } from '../../workers/roles.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { requireEnv, requireTestS3 } from '../helpers/env.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { startPipeline, waitForEvalWorkflow, writeJobset, type Pipeline } from '../pipeline/harness.ts';
import { assertEveryNarInfoHasItsNar, nonce, runNix, s3Backend, serveCache, substitute, tempDir } from './helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');

/** Two jobs where `app` refers to `lib` at run time, so substituting app needs lib from the cache too. */
const JOBS = {
  lib: { script: 'echo library' },
  app: { deps: ['lib'] },
};

function outputsOf(summary: RunSummary): string[] {
  return summary.jobs.flatMap((job) => Object.values(job.outputs));
}

describe('cache after `harmonia-ci run`', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir('cli');
  });
  after(async () => tmp?.remove());

  it('serves every output to the real nix-store with `cache serve`, and the logs', async () => {
    const address = requireEnv('TEMPORAL_ADDRESS');
    const namespace = `cache-${nonce()}`;
    const connection = await Connection.connect({ address });
    await ensureNamespace(connection, namespace);
    await ensureSearchAttributes(connection, namespace);
    await connection.close();
    const db = await createTestDatabase();
    const env = { ...process.env, TEMPORAL_ADDRESS: address, HARMONIA_CI_TEMPORAL_NAMESPACE: namespace, DATABASE_URL: db.url };
    let server: ChildProcess | undefined;
    try {
      const publicKey = (await execa('node', [CLI, 'keys', 'generate', 'cli-test-1', '--secret', join(tmp.dir, 'key'), '--public', join(tmp.dir, 'key.pub')])).stdout.trim();
      const jobs = await writeJobset(tmp.dir, JOBS);
      const cacheDir = join(tmp.dir, 'the-cache');
      const run = await execa('node', [CLI, 'run', jobs, '--state-dir', join(tmp.dir, 'state'), '--no-ui', '--json', '--cache', cacheDir, '--signing-key', join(tmp.dir, 'key')], { env, reject: false });
      assert.equal(run.exitCode, 0, run.stderr);
      assert.match(run.stderr, new RegExp(`public key ${publicKey.replace(/[+/]/g, '\\$&')}`));
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as RunSummary;
      assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded', 'succeeded']);

      server = spawn(process.execPath, [CLI, 'cache', 'serve', '--cache', cacheDir, '--port', '0'], { env: { ...env, HARMONIA_CI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
      const url = await new Promise<string>((resolve, reject) => {
        server!.stdout!.on('data', (chunk: Buffer) => {
          const match = /^serving .* at (http:\S+)$/m.exec(chunk.toString());
          if (match) resolve(match[1]!);
        });
        server!.once('exit', (code) => reject(new Error(`cache serve exited with ${code}`)));
      });
      const fetched = await substitute(join(tmp.dir, 'empty-store'), outputsOf(summary), url, publicKey);
      assert.ok(fetched.ok, fetched.stderr);
      for (const path of outputsOf(summary)) assert.equal(await readFile(join(tmp.dir, 'empty-store', path), 'utf8'), await readFile(path, 'utf8'));
      const app = summary.jobs.find((job) => job.attr === 'app')!;
      const log = await runNix('nix-store', ['--read-log', '--store', url, app.drvPath!]);
      assert.ok(log.ok, log.stderr);
      assert.equal(await assertEveryNarInfoHasItsNar(new LocalDirectoryBackend(cacheDir)), 2);
      assert.equal(await stat(join(tmp.dir, 'state', 'uploads')).then((s) => s.isDirectory()), true);
    } finally {
      server?.kill('SIGTERM');
      await db.drop();
    }
  });
});

describe('cache in S3 after a pipeline run', () => {
  let pipeline: Pipeline;
  let bucket: Awaited<ReturnType<typeof s3Backend>>;
  before(async () => {
    bucket = await s3Backend();
    const tmp = await tempDir('s3-credentials');
    const s3 = requireTestS3();
    const credentials = join(tmp.dir, 'credentials');
    await writeFile(credentials, `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`);
    pipeline = await startPipeline({ env: { HARMONIA_CI_CACHE_URL: bucket.url, HARMONIA_CI_S3_CREDENTIALS_FILE: credentials } });
  });
  after(async () => {
    await pipeline?.close();
    await bucket?.close();
  });

  it('publishes through presigned URLs, and the real nix-store substitutes from our server', async () => {
    const summary = await pipeline.run(await writeJobset(pipeline.dir, JOBS));
    assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded', 'succeeded']);
    assert.equal(await assertEveryNarInfoHasItsNar(bucket.backend), 2);
    const server = await serveCache(bucket.backend);
    try {
      const publicKey = (await readFile(join(pipeline.dir, 'state', 'signing-key.pub'), 'utf8')).trim();
      const fetched = await substitute(join(pipeline.dir, 'empty-store'), outputsOf(summary), server.url, publicKey);
      assert.ok(fetched.ok, fetched.stderr);
    } finally {
      await server.close();
    }
  });
});

describe('a signer killed mid-publish', () => {
  let pipeline: Pipeline;
  let child: ChildProcess | undefined;
  before(async () => {
    // No signer in this process: the first one runs apart so that it can be killed.
    pipeline = await startPipeline({ workers: { signer: false, builderHeartbeatTimeoutMs: 3000 } });
  });
  after(async () => {
    child?.kill('SIGKILL');
    await pipeline?.close();
  });

  it('leaves no narinfo without its NAR, and the builds complete after a restart', async () => {
    const marker = join(pipeline.dir, 'paused');
    child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'signer-process.ts')], {
      env: { ...process.env, HARMONIA_CI_TEMPORAL_NAMESPACE: pipeline.stack.namespace, HARMONIA_CI_STATE_DIR: join(pipeline.dir, 'state'), PAUSE_MARKER: marker },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child!.once('exit', (code) => reject(new Error(`the signer process exited with ${code}`)));
    });
    const { evalId } = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: await writeJobset(pipeline.dir, JOBS) });
    const deadline = Date.now() + 60_000;
    while (!(await stat(marker).catch(() => undefined))) {
      if (Date.now() > deadline) throw new Error('the signer never reached a narinfo write');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGKILL');
    const cache = new LocalDirectoryBackend(join(pipeline.dir, 'state', 'cache'));
    assert.equal(await assertEveryNarInfoHasItsNar(cache), 0, 'the killed signer wrote no narinfo');

    await pipeline.addWorkers({ coordinator: false, evaluator: false, builder: false, signer: true });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId);
    const { rows } = await pipeline.db.pool.query<{ status: string }>(
      'SELECT b.status FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id WHERE eb.eval_id = $1',
      [evalId],
    );
    assert.deepEqual(rows.map((row) => row.status), ['succeeded', 'succeeded']);
    assert.equal(await assertEveryNarInfoHasItsNar(cache), 2);
  });
});

describe('an upload target that expired before the upload', () => {
  let pipeline: Pipeline;
  let stop: (() => Promise<void>) | undefined;
  before(async () => {
    pipeline = await startPipeline({ workers: { signer: false } });
  });
  after(async () => {
    await stop?.();
    await pipeline?.close();
  });

  it('makes the build workflow ask the signer again, and the build succeeds', async () => {
    // Beside the test's store, as in `run`: the derivations were never published to the cache.
    const store = new DaemonPool({ socketPath: daemonSocket() });
    const signer = await openSigner(pipeline.config, { generateKey: true, store });
    let rounds = 0;
    // The real signer, except that its first plan arrives already expired (a builder that queued for 15 minutes).
    const activities: SignerActivities = {
      ...signer.activities,
      async prepareUpload(staged) {
        const plan = await signer.activities.prepareUpload(staged);
        return rounds++ === 0 ? { uploads: plan.uploads.map((u) => ({ ...u, target: { ...u.target, expiresAt: 0 } })) } : plan;
      },
    };
    const worker = await createSignerWorker({ connection: pipeline.stack.workerConnection, namespace: pipeline.stack.namespace, bundleDir: '' }, activities);
    const running = runWorkers([worker]);
    stop = async () => {
      await running.shutdown();
      await signer.close();
      await store.close();
    };
    const summary = await pipeline.run(await writeJobset(pipeline.dir, { single: { script: 'echo once' } }));
    assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded']);
    assert.equal(rounds, 2);
    assert.equal(await assertEveryNarInfoHasItsNar(signer.backend), 1);
  });
});

