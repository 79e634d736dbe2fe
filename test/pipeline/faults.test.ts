/** Builders that die, builds that exceed their limits, and rebuilds asked for with the `temporal` tool. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { startLocalEval } from '../../cli/run-progress.ts';
import { locateTemporalCli } from '../../lib/tools.ts';
import { buildWorkflowId, refWorkflowId } from '../../workflows/definitions.ts';
import type { BuildWorkflowInput } from '../../workflows/types.ts';
import { startPipeline, waitForEvalWorkflow, waitUntil, writeJobset, type Pipeline } from './harness.ts';
import { schedulerViolations } from './invariants.ts';

async function buildRow(pipeline: Pipeline, name: string) {
  const { rows } = await pipeline.db.pool.query<{ status: string; node: string | null; attempts: number; error: string | null }>(
    'SELECT b.status, b.node, b.attempts, b.error FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = $1',
    [name],
  );
  return rows[0];
}

describe('pipeline: a builder killed mid-build', () => {
  let pipeline: Pipeline;
  let child: ChildProcess | undefined;
  before(async () => {
    // No builder in this process: the first one runs apart so that it can be killed.
    pipeline = await startPipeline({ workers: { builder: false, builderHeartbeatTimeoutMs: 4000 } });
  });
  after(async () => {
    child?.kill('SIGKILL');
    await pipeline?.close();
  });

  it('is noticed by its missing heartbeat, and the build succeeds once on another builder', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'builder-process.ts')], {
      env: {
        ...process.env,
        HARMONIA_CI_TEMPORAL_NAMESPACE: pipeline.stack.namespace,
        HARMONIA_CI_DATABASE_URL: pipeline.db.url,
        HARMONIA_CI_STATE_DIR: join(pipeline.dir, 'alpha'),
        BUILDER_HOST: 'alpha',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child!.once('exit', (code) => reject(new Error(`the builder process exited with ${code}`)));
    });
    const path = await writeJobset(pipeline.dir, { victim: { script: 'echo started; /bin/sleep 3' } });
    const { evalId } = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path });
    await waitUntil(async () => (await buildRow(pipeline, 'victim'))?.node === 'alpha', 'alpha builds');
    child.kill('SIGKILL');

    await pipeline.addWorkers({ coordinator: false, evaluator: false, host: 'beta' });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId);
    const row = await buildRow(pipeline, 'victim');
    assert.equal(row?.status, 'succeeded');
    assert.equal(row?.node, 'beta');
    assert.equal(row?.attempts, 2);

    const { rows } = await pipeline.db.pool.query<{ drv_path: string }>(
      "SELECT drv_path FROM derivations WHERE name = 'victim'",
    );
    const history = await pipeline.client.workflow.getHandle(buildWorkflowId(rows[0]!.drv_path)).fetchHistory();
    const events = history.events!;
    assert.equal(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'buildDerivation').length, 2);
    assert.equal(events.filter((e) => e.activityTaskTimedOutEventAttributes).length, 1);
    assert.equal(events.filter((e) => e.activityTaskCompletedEventAttributes).length >= 1, true);
  });
});

describe('pipeline: build limits', () => {
  let pipeline: Pipeline;
  before(async () => {
    pipeline = await startPipeline({
      env: {
        HARMONIA_CI_LIMITS_MAX_SILENT: '2s',
        HARMONIA_CI_LIMITS_BUILD_TIMEOUT: '5s',
        HARMONIA_CI_LIMITS_LOG_TAIL: '16',
        HARMONIA_CI_LIMITS_ATTEMPTS: '2',
      },
    });
  });
  after(async () => {
    await pipeline?.close();
  });

  it('ends a silent build and an endless one as timed-out, without retrying either, keeping limits.log-tail of the log and passing on limits.attempts', async () => {
    const path = await writeJobset(pipeline.dir, {
      quiet: { script: 'echo about to go quiet; /bin/sleep 60' },
      chatty: { script: 'i=0; while [ $i -lt 120 ]; do echo tick $i; /bin/sleep 0.5; i=$((i+1)); done' },
      fine: {},
    });
    const started = Date.now();
    const summary = await pipeline.run(path);
    assert.ok(Date.now() - started < 40_000, 'the limits ended the builds long before they would have finished');
    const status = Object.fromEntries(summary.jobs.map((j) => [j.attr, j.status]));
    assert.deepEqual(status, { chatty: 'timed-out', fine: 'succeeded', quiet: 'timed-out' });
    const quiet = await buildRow(pipeline, 'quiet');
    const chatty = await buildRow(pipeline, 'chatty');
    assert.match(quiet!.error!, /printed nothing for 2 s/);
    assert.match(chatty!.error!, /wall-clock limit of 5 s/);
    assert.equal(quiet!.attempts, 1);
    assert.equal(chatty!.attempts, 1);
    const { rows } = await pipeline.db.pool.query<{ tail: string }>(
      `SELECT t.tail FROM build_log_tails t JOIN build_jobs b ON b.id = t.build_id JOIN derivations d USING (drv_path) WHERE d.name = 'chatty'`,
    );
    assert.match(rows[0]!.tail, /tick \d+\n$/);
    assert.ok(Buffer.byteLength(rows[0]!.tail) <= 16, `limits.log-tail keeps 16 bytes, the tail has ${JSON.stringify(rows[0]!.tail)}`);
    // limits.attempts reaches the build workflow that counts the attempts.
    const drv = summary.jobs.find((j) => j.attr === 'fine')!.drvPath!;
    const history = await pipeline.client.workflow.getHandle(buildWorkflowId(drv)).fetchHistory();
    const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    assert.equal((JSON.parse(Buffer.from(input.data!).toString()) as BuildWorkflowInput).maxAttempts, 2);
  });
});

describe('pipeline: rebuild-failed from the temporal tool', () => {
  let pipeline: Pipeline;
  before(async () => {
    pipeline = await startPipeline();
  });
  after(async () => {
    await pipeline?.close();
  });

  it('puts failed and dep-failed builds back and finishes the eval when they succeed', async () => {
    const gate = join(pipeline.dir, 'allow-flaky');
    const path = await writeJobset(pipeline.dir, {
      flaky: { script: `[ -e ${gate} ] || { echo 'not yet allowed'; exit 1; }` },
      later: { deps: ['flaky'] },
    });
    const first = await pipeline.run(path);
    assert.deepEqual(first.jobs.map((j) => j.status), ['failed', 'dep-failed']);

    await writeFile(gate, '');
    const { projectName } = await pipeline.db.pool
      .query<{ name: string }>('SELECT p.name FROM projects p JOIN evaluations e ON e.project_id = p.id WHERE e.id = $1', [first.eval.id])
      .then((r) => ({ projectName: r.rows[0]!.name }));
    await execa(locateTemporalCli(), [
      'workflow', 'signal',
      '--address', process.env.TEMPORAL_ADDRESS!,
      '--namespace', pipeline.stack.namespace,
      '--workflow-id', refWorkflowId(projectName, 'refs/heads/local'),
      '--name', 'rebuild-failed',
    ]);
    await waitUntil(async () => (await buildRow(pipeline, 'later'))?.status === 'succeeded', 'the dependent is built');
    const flaky = await buildRow(pipeline, 'flaky');
    assert.equal(flaky?.status, 'succeeded');
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.eval.id);
    assert.deepEqual(await schedulerViolations(pipeline.db.pool, [first.eval.id]), []);
  });
});
