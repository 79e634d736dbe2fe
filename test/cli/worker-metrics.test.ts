/**
 * `harmonia-ci worker builder --metrics-port 0` as a real process against the runner's Temporal,
 * PostgreSQL and nix-daemon: after it built a passing and a failing job, its `/metrics` shows
 * them by status with the bytes it staged, and the Temporal SDK's own metrics beside them, in an
 * exposition promtool accepts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ensureLocalProject } from '../../forges/projects.ts';
import { runPromtool } from '../helpers/promtool.ts';
import { startCliHarness, waitUntil, writeJobs, type CliHarness, type CliProcess } from './harness.ts';

/** The value of the sample `name{labels}` (labels as written by prom-client), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('worker metrics', { timeout: 120_000 }, () => {
  let h: CliHarness;
  let builder: CliProcess;
  let metricsUrl: string;
  let project: string;
  const node = `metrics-builder-${randomUUID().slice(0, 6)}`;

  before(async () => {
    h = await startCliHarness();
    const workers = await h.startWorkers();
    project = await ensureLocalProject(h.db.pool, h.dir, undefined);
    builder = h.start(
      ['worker', 'builder', '--host', node, '--systems', 'x86_64-linux', '--features', '', '--max-jobs', '2', '--metrics-port', '0', '--metrics-host', '127.0.0.1'],
      { DATABASE_URL: '', HARMONIA_CI_CACHE_PUBLIC_KEYS: workers.cache!.publicKey },
    );
    await builder.waitFor(/taking builds from build-x86_64-linux/, 60_000);
    metricsUrl = /metrics at (http:\/\/[^\s"]+)/.exec(builder.output())![1]!;
  });
  after(async () => {
    await h?.close();
  });

  it('counts its builds by status and the bytes it staged, beside the Temporal SDK metrics', async () => {
    const file = await writeJobs(h.dir, { passes: { script: 'echo fine' }, breaks: { script: 'echo broken; exit 3' } });
    const result = await h.cli(['eval', file, '--project', project, '--ref', 'refs/heads/metrics']);
    assert.equal(result.code, 0, result.stderr);
    const evalId = result.stdout.trim();
    await waitUntil(async () => {
      const { rows } = await h.db.pool.query<{ status: string }>(
        `SELECT b.status FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id WHERE e.eval_id = $1`,
        [evalId],
      );
      return rows.length === 2 && rows.every((row) => row.status === 'succeeded' || row.status === 'failed') ? true : undefined;
    }, 'both builds finished');

    const response = await fetch(metricsUrl);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.equal(sample(text, 'harmonia_ci_builder_builds_total{status="succeeded"}'), 1, text);
    assert.equal(sample(text, 'harmonia_ci_builder_builds_total{status="failed"}'), 1);
    assert.equal(sample(text, 'harmonia_ci_builder_build_seconds_count{status="succeeded"}'), 1);
    assert.ok(sample(text, 'harmonia_ci_builder_staged_bytes_total')! > 0, 'the passing build staged its output');
    // The SDK's own metrics, from its exporter: the build tasks this process's workers took, the
    // uploads of the passing build's outputs and of the failing build's full log.
    assert.match(text, /^temporal_activity_task_received_total\{activity_type="buildDerivation",.*\} 2$/m, text);
    assert.match(text, /^temporal_activity_task_received_total\{activity_type="uploadOutputs",.*\} 2$/m);
    assert.ok(sample(text, 'harmonia_ci_builder_uploads_total')! > 0, 'the passing build uploaded to the cache');
    const checked = await runPromtool(['check', 'metrics'], text);
    assert.equal(checked.exitCode, 0, checked.output);
  });

  it('answers 404 off /metrics', async () => {
    assert.equal((await fetch(new URL('/other', metricsUrl))).status, 404);
  });
});
