/**
 * Full build logs in the cache for every build, failed ones included, on real services (runner's
 * Temporal, PostgreSQL, nix-daemon, SeaweedFS): a builder without a signer in its process stages
 * the log of a failed build, the build workflow has it uploaded through presigned URLs and
 * published by a signer worker; the real `nix log`, with our cache as its only substituter and a
 * store that never built the derivation, prints it. After `rebuild-failed` the successful
 * attempt's log replaces it (logs are the one replaceable object in the cache).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { openSigner } from '../../activities/signer/setup.ts';
import { logKey } from '../../cache/layout.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { locateTemporalCli } from '../../lib/tools.ts';
import { refWorkflowId } from '../../workflows/definitions.ts';
import { createSignerWorker, runWorkers } from '../../workers/roles.ts';
import { requireTestS3 } from '../helpers/env.ts';
import { daemonSocket } from '../protocol/helpers.ts';
import { startPipeline, waitUntil, writeJobset, type Pipeline } from '../pipeline/harness.ts';
import { NIX_COMMAND, runNix, s3Backend, serveCache, tempDir } from './helpers.ts';

async function buildStatus(pipeline: Pipeline, drvPath: string): Promise<string | undefined> {
  const { rows } = await pipeline.db.pool.query<{ status: string }>('SELECT status FROM build_jobs WHERE drv_path = $1', [drvPath]);
  return rows[0]?.status;
}

describe('full logs of failed builds, replaced by the rebuild', () => {
  let pipeline: Pipeline;
  let bucket: Awaited<ReturnType<typeof s3Backend>>;
  let stop: (() => Promise<void>) | undefined;
  let server: Awaited<ReturnType<typeof serveCache>> | undefined;
  before(async () => {
    bucket = await s3Backend();
    const tmp = await tempDir('logs-credentials');
    const s3 = requireTestS3();
    const credentials = join(tmp.dir, 'credentials');
    await writeFile(credentials, `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`);
    // No signer beside the builder: the build workflow publishes what the builder staged.
    pipeline = await startPipeline({ env: { HARMONIA_CI_CACHE_URL: bucket.url, HARMONIA_CI_S3_CREDENTIALS_FILE: credentials }, workers: { signer: false } });
    const store = new DaemonPool({ socketPath: daemonSocket() });
    const signer = await openSigner(pipeline.config, { generateKey: true, store });
    const worker = await createSignerWorker({ connection: pipeline.stack.workerConnection, namespace: pipeline.stack.namespace, bundleDir: '' }, signer.activities);
    const running = runWorkers([worker]);
    stop = async () => {
      await running.shutdown();
      await signer.close();
      await store.close();
    };
    server = await serveCache(bucket.backend);
  });
  after(async () => {
    await server?.close();
    await stop?.();
    await pipeline?.close();
    await bucket?.close();
  });

  it('serves a failed build log to `nix log`, then the log of its successful rebuild', async () => {
    const gate = join(pipeline.dir, 'allow-flaky');
    const jobs = await writeJobset(pipeline.dir, {
      flaky: { script: `[ -e ${gate} ] || { echo 'attempt one: not yet allowed'; exit 1; }; echo 'attempt two: allowed now'` },
    });
    const first = await pipeline.run(jobs);
    assert.deepEqual(first.jobs.map((job) => job.status), ['failed']);
    const drvPath = first.jobs[0]!.drvPath!;

    // A store that holds the derivation but never built it: its own log directory is empty.
    const root = join(pipeline.dir, 'reader-store');
    const copied = await runNix('nix', [...NIX_COMMAND, 'copy', '--derivation', '--no-check-sigs', '--to', `local?root=${root}`, drvPath]);
    assert.ok(copied.ok, copied.stderr);
    const nixLog = () => runNix('nix', [...NIX_COMMAND, 'log', '--store', root, '--option', 'substituters', server!.url, drvPath]);
    const failedLog = await nixLog();
    assert.ok(failedLog.ok, failedLog.stderr);
    assert.match(failedLog.stdout, /attempt one: not yet allowed/);
    assert.match(failedLog.stderr, new RegExp(`got build log for '${drvPath}' from 'http://127\\.0\\.0\\.1`));

    await writeFile(gate, '');
    const { rows } = await pipeline.db.pool.query<{ name: string }>('SELECT p.name FROM projects p JOIN evaluations e ON e.project_id = p.id WHERE e.id = $1', [first.eval.id]);
    await execa(locateTemporalCli(), [
      'workflow', 'signal',
      '--address', process.env.TEMPORAL_ADDRESS!,
      '--namespace', pipeline.stack.namespace,
      '--workflow-id', refWorkflowId(rows[0]!.name, 'refs/heads/local'),
      '--name', 'rebuild-failed',
    ]);
    await waitUntil(async () => (await buildStatus(pipeline, drvPath)) === 'succeeded', 'the rebuild succeeds');
    const rebuiltLog = await nixLog();
    assert.ok(rebuiltLog.ok, rebuiltLog.stderr);
    assert.match(rebuiltLog.stdout, /attempt two: allowed now/);
    assert.doesNotMatch(rebuiltLog.stdout, /not yet allowed/, 'the newest attempt wins');

    // Stored zstd, as Nix's own binary cache stores write logs.
    const stored = (await bucket.backend.get(logKey(drvPath)))!;
    const chunks: Buffer[] = [];
    for await (const chunk of zstdDecompress(stored.body)) chunks.push(chunk);
    assert.match(Buffer.concat(chunks).toString(), /attempt two: allowed now/);
  });
});
