/**
 * S3 away while outputs are published (through a TCP proxy cut in front of the test SeaweedFS):
 * the build waits storage out and publishes once it is back, never building again; storage that
 * stays away past `limits.publish-deadline` fails the build, once, saying why.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireTestS3 } from '../helpers/env.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { startPipeline, waitUntil, writeJobset, type Pipeline } from '../pipeline/harness.ts';
import { assertEveryNarInfoHasItsNar, s3Backend, tempDir } from './helpers.ts';

async function buildOf(pipeline: Pipeline, name: string): Promise<{ status: string; attempts: number; error: string | null } | undefined> {
  const { rows } = await pipeline.db.pool.query<{ status: string; attempts: number; error: string | null }>(
    'SELECT b.status, b.attempts, b.error FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = $1',
    [name],
  );
  return rows[0];
}

for (const scenario of [
  { name: 'S3 away for a while during publishing', deadline: '6h' },
  { name: 'S3 away past the publish deadline', deadline: '8s' },
]) {
  describe(scenario.name, () => {
    let pipeline: Pipeline;
    let proxy: TcpProxy;
    let bucket: Awaited<ReturnType<typeof s3Backend>>;
    before(async () => {
      const s3 = requireTestS3();
      bucket = await s3Backend();
      proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(s3.endpoint).port) });
      const tmp = await tempDir('s3-outage');
      const credentials = join(tmp.dir, 'credentials');
      await writeFile(credentials, `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`);
      pipeline = await startPipeline({
        env: {
          HARMONIA_CI_CACHE_URL: `s3://${bucket.bucket}?endpoint=http://127.0.0.1:${proxy.port}&region=${s3.region}`,
          HARMONIA_CI_S3_CREDENTIALS_FILE: credentials,
          HARMONIA_CI_LIMITS_PUBLISH_DEADLINE: scenario.deadline,
        },
      });
    });
    after(async () => {
      await pipeline?.close();
      await proxy?.close();
      await bucket?.close();
    });

    it(scenario.deadline === '6h' ? 'publishes once storage is back, without building again' : 'fails the build once, saying the cache did not take its outputs', async () => {
      const path = await writeJobset(pipeline.dir, { stored: { script: '/bin/sleep 2' } });
      const running = pipeline.run(path);
      await waitUntil(async () => (await buildOf(pipeline, 'stored'))?.status === 'building', 'the build runs');
      await proxy.cut();
      if (scenario.deadline === '6h') {
        // Outputs are built and wait for storage meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 8_000));
        assert.notEqual((await buildOf(pipeline, 'stored'))?.status, 'succeeded');
        await proxy.restore();
      }
      const summary = await running;
      const build = (await buildOf(pipeline, 'stored'))!;
      assert.equal(build.attempts, 1, 'built once');
      if (scenario.deadline === '6h') {
        assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded']);
        assert.equal(await assertEveryNarInfoHasItsNar(bucket.backend), 1);
      } else {
        assert.deepEqual(summary.jobs.map((job) => job.status), ['failed']);
        assert.match(build.error ?? '', /the build succeeded, but the cache did not take its outputs within 8 s/);
        await proxy.restore();
        assert.equal(await assertEveryNarInfoHasItsNar(bucket.backend), 0);
      }
    });
  });
}
