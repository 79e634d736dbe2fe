/**
 * Liveness of an eval (docs/architecture.md, "Scheduler"): a build it still needs is started again
 * when it was withdrawn after the eval subscribed, or when its workflow vanished, so the eval ends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { repairLostBuilds } from '../../activities/coordinator/scheduler.ts';
import { startLocalEval } from '../../cli/run-progress.ts';
import type { buildWorkflow } from '../../workflows/build.ts';
import { buildWorkflowId, cancelSignal, EVAL_QUEUE } from '../../workflows/definitions.ts';
import { startPipeline, waitForEvalWorkflow, waitUntil, writeJobset, type Pipeline } from './harness.ts';
import { schedulerViolations } from './invariants.ts';

async function buildRow(pipeline: Pipeline, name: string): Promise<{ status: string; workflow_id: string | null; drv_path: string } | undefined> {
  const { rows } = await pipeline.db.pool.query<{ status: string; workflow_id: string | null; drv_path: string }>(
    'SELECT b.status, b.workflow_id, b.drv_path FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = $1',
    [name],
  );
  return rows[0];
}

async function statuses(pipeline: Pipeline, evalId: string): Promise<Record<string, string>> {
  const { rows } = await pipeline.db.pool.query<{ name: string; status: string }>(
    `SELECT d.name, b.status FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id JOIN derivations d USING (drv_path)
      WHERE e.eval_id = $1 ORDER BY d.name`,
    [evalId],
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.status]));
}

describe('pipeline: liveness', () => {
  let pipeline: Pipeline;
  before(async () => {
    // No builder at first: builds wait on their queue until the test adds one.
    pipeline = await startPipeline({ workers: { builder: false } });
  });
  after(async () => {
    await pipeline?.close();
  });

  it('starts again a build that was withdrawn after the eval subscribed, and the eval ends', async () => {
    const path = await writeJobset(pipeline.dir, { withdrawn: {}, after_withdrawn: { deps: ['withdrawn'] } });
    const { evalId } = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path });
    await waitUntil(async () => Boolean((await buildRow(pipeline, 'withdrawn'))?.workflow_id), 'the eval started the build');
    const drv = (await buildRow(pipeline, 'withdrawn'))!.drv_path;
    // The build is withdrawn while it waits for a builder, as when another eval that wanted it goes away.
    const { runId } = await pipeline.client.workflow.getHandle(buildWorkflowId(drv)).describe();
    await pipeline.client.workflow.getHandle(buildWorkflowId(drv)).signal(cancelSignal);
    const withdrawn = await pipeline.client.workflow.getHandle<typeof buildWorkflow>(buildWorkflowId(drv), runId).result();
    assert.equal(withdrawn.status, 'cancelled');

    const builder = await pipeline.addWorkers({ coordinator: false, evaluator: false, signer: false, builder: true, host: 'late-builder' });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId);
    await builder.stop();
    assert.deepEqual(await statuses(pipeline, evalId), { after_withdrawn: 'succeeded', withdrawn: 'succeeded' });
    assert.deepEqual(await schedulerViolations(pipeline.db.pool, [evalId]), []);
  });

  it('finds a build whose workflow vanished, starts it again, and the eval ends', async () => {
    const path = await writeJobset(pipeline.dir, { vanished: {} });
    const { evalId } = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path });
    await waitUntil(async () => Boolean((await buildRow(pipeline, 'vanished'))?.workflow_id), 'the eval started the build');
    const row = (await buildRow(pipeline, 'vanished'))!;
    await pipeline.client.workflow.getHandle(row.workflow_id!).terminate('lost on purpose');
    // The record still says open; nothing will tell the eval. The periodic check finds it.
    assert.equal(await repairLostBuilds(pipeline.db.pool, pipeline.client, evalId), 1);
    const reset = (await buildRow(pipeline, 'vanished'))!;
    assert.equal(reset.status, 'pending');
    assert.equal(reset.workflow_id, null);
    // The eval's next pass (at most its poll interval later) starts it again.
    const builder = await pipeline.addWorkers({ coordinator: false, evaluator: false, signer: false, builder: true, host: 'repair-builder' });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId);
    await builder.stop();
    assert.deepEqual(await statuses(pipeline, evalId), { vanished: 'succeeded' });
    assert.deepEqual(await schedulerViolations(pipeline.db.pool, [evalId]), []);
  });
});

describe('pipeline: an evaluator that fails on every attempt', () => {
  let pipeline: Pipeline;
  before(async () => {
    // The evaluator here is a stand-in whose every attempt throws, as a host that keeps dying would.
    pipeline = await startPipeline({ workers: { evaluator: false, builder: false } });
  });
  after(async () => {
    await pipeline?.close();
  });

  it('ends the eval failed with the reason instead of leaving it running', async () => {
    let attempts = 0;
    const evaluator = await Worker.create({
      connection: pipeline.stack.workerConnection,
      namespace: pipeline.stack.namespace,
      taskQueue: EVAL_QUEUE,
      activities: {
        async evaluate() {
          attempts++;
          throw new Error('the evaluator host lost its disk');
        },
      },
    });
    const path = await writeJobset(pipeline.dir, { never: {} });
    const { evalId } = await evaluator.runUntil(async () => {
      const started = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path });
      await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, started.evalId);
      return started;
    });
    const { rows } = await pipeline.db.pool.query<{ status: string; error: string | null }>('SELECT status, error FROM evaluations WHERE id = $1', [evalId]);
    assert.equal(rows[0]!.status, 'failed');
    assert.match(rows[0]!.error ?? '', /^the evaluator failed: the evaluator host lost its disk$/);
    assert.equal(attempts, 3);
  });
});
