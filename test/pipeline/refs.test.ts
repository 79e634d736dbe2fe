/** Shared builds, superseding pushes, merge-queue refs and tree-hash dedup, on real services. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { readRunSummary, startLocalEval } from '../../cli/run-progress.ts';
import { buildWorkflowId } from '../../workflows/definitions.ts';
import { startPipeline, waitForEvalWorkflow, waitUntil, writeJobset, type Pipeline } from './harness.ts';
import { schedulerViolations } from './invariants.ts';

async function buildActivityCount(pipeline: Pipeline, drvPath: string): Promise<number> {
  let count = 0;
  for await (const execution of pipeline.client.workflow.list({ query: `WorkflowId = '${buildWorkflowId(drvPath)}'` })) {
    const history = await pipeline.client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    count += history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'buildDerivation').length;
  }
  return count;
}

describe('pipeline: refs and sharing', () => {
  let pipeline: Pipeline;
  before(async () => {
    pipeline = await startPipeline();
  });
  after(async () => {
    await pipeline?.close();
  });

  // Job names are unique across this file's tests, and each file has its own database.
  const buildStatus = async (name: string): Promise<string | undefined> => {
    const { rows } = await pipeline.db.pool.query<{ status: string }>(
      'SELECT b.status FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = $1',
      [name],
    );
    return rows[0]?.status;
  };

  it('builds a derivation two concurrent evals need exactly once', async () => {
    const nonce = randomUUID();
    const shared = { script: '/bin/sleep 2' };
    const one = await writeJobset(pipeline.dir, { shared, first_only: {} }, { nonce, file: 'one.nix' });
    const two = await writeJobset(pipeline.dir, { shared, second_only: {} }, { nonce, file: 'two.nix' });
    const [a, b] = await Promise.all([pipeline.run(one), pipeline.run(two)]);
    const sharedA = a.jobs.find((j) => j.attr === 'shared')!;
    const sharedB = b.jobs.find((j) => j.attr === 'shared')!;
    assert.equal(sharedA.drvPath, sharedB.drvPath);
    assert.equal(sharedA.status, 'succeeded');
    assert.equal(sharedB.status, 'succeeded');
    assert.equal(await buildActivityCount(pipeline, sharedA.drvPath!), 1);
  });

  it('cancels the superseded eval and its unstarted builds, while a running build the new eval shares finishes', async () => {
    const nonce = randomUUID();
    const file = 'superseded.nix';
    const gate = { script: '/bin/sleep 3' };
    const path = await writeJobset(pipeline.dir, { gate, old_only: { deps: ['gate'] } }, { nonce, file });
    const first = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path, ref: 'refs/heads/feature' });
    await waitUntil(async () => (await buildStatus('gate')) === 'building', 'the gate build runs');

    await writeJobset(pipeline.dir, { gate, new_only: {} }, { nonce, file });
    const second = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path, ref: 'refs/heads/feature' });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.evalId);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, second.evalId);

    const evals = await pipeline.db.pool.query<{ id: number; status: string }>(
      'SELECT id, status FROM evaluations WHERE id = ANY($1::bigint[]) ORDER BY id',
      [[first.evalId, second.evalId]],
    );
    assert.deepEqual(evals.rows.map((r) => r.status), ['cancelled', 'succeeded']);
    const builds = await pipeline.db.pool.query<{ name: string; status: string; attempts: number }>(
      `SELECT d.name, b.status, b.attempts FROM build_jobs b JOIN derivations d USING (drv_path)
        WHERE d.name IN ('gate', 'old_only', 'new_only') ORDER BY d.name`,
    );
    const byName = Object.fromEntries(builds.rows.map((r) => [r.name, r]));
    assert.equal(byName.gate?.status, 'succeeded');
    assert.equal(byName.gate?.attempts, 1);
    assert.equal(byName.new_only?.status, 'succeeded');
    assert.equal(byName.old_only?.status, 'cancelled');
    assert.equal(byName.old_only?.attempts, 0);
    assert.deepEqual(await schedulerViolations(pipeline.db.pool, [first.evalId, second.evalId]), []);
  });

  it('never supersedes on a merge-queue ref', async () => {
    const nonce = randomUUID();
    const file = 'queue.nix';
    const ref = 'refs/heads/gh-readonly-queue/main/pr-7-0123456789abcdef';
    const path = await writeJobset(pipeline.dir, { q_first: { script: '/bin/sleep 2' } }, { nonce, file });
    const first = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path, ref });
    await waitUntil(async () => (await buildStatus('q_first')) === 'building', 'the first build runs');
    await writeJobset(pipeline.dir, { q_second: {} }, { nonce, file });
    const second = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path, ref });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.evalId);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, second.evalId);
    const { rows } = await pipeline.db.pool.query<{ status: string }>(
      'SELECT status FROM evaluations WHERE id = ANY($1::bigint[]) ORDER BY id',
      [[first.evalId, second.evalId]],
    );
    assert.deepEqual(rows.map((r) => r.status), ['succeeded', 'succeeded']);
    assert.equal(await buildStatus('q_first'), 'succeeded');
  });

  it('finishes both of two merge-queue pushes that overlap, building what they share once', async () => {
    const nonce = randomUUID();
    const file = 'queue-overlap.nix';
    const ref = 'refs/heads/gh-readonly-queue/main/pr-8-fedcba9876543210';
    const mq_shared = { script: '/bin/sleep 2' };
    const path = await writeJobset(pipeline.dir, { mq_shared, mq_first: { deps: ['mq_shared'] } }, { nonce, file });
    const first = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path, ref });
    await waitUntil(async () => (await buildStatus('mq_shared')) === 'building', 'the shared build runs');
    await writeJobset(pipeline.dir, { mq_shared, mq_second: { deps: ['mq_shared'] } }, { nonce, file });
    const second = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path, ref });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.evalId);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, second.evalId);
    const [a, b] = [await readRunSummary(pipeline.db.pool, first.evalId), await readRunSummary(pipeline.db.pool, second.evalId)];
    assert.deepEqual([a.eval.status, b.eval.status], ['succeeded', 'succeeded']);
    assert.deepEqual(a.jobs.map((j) => `${j.attr} ${j.status}`).sort(), ['mq_first succeeded', 'mq_shared succeeded']);
    assert.deepEqual(b.jobs.map((j) => `${j.attr} ${j.status}`).sort(), ['mq_second succeeded', 'mq_shared succeeded']);
    const shared = a.jobs.find((j) => j.attr === 'mq_shared')!.drvPath!;
    assert.equal(b.jobs.find((j) => j.attr === 'mq_shared')!.drvPath, shared);
    assert.equal(await buildActivityCount(pipeline, shared), 1);
  });

  it('skips an eval whose tree was already evaluated successfully, copying its results', async () => {
    const path = await writeJobset(pipeline.dir, { tree_job: {} });
    const treeHash = 'c0ffee'.repeat(6) + 'c0ff';
    const first = await pipeline.run(path, { treeHash });
    assert.equal(first.eval.status, 'succeeded');
    const second = await pipeline.run(path, { treeHash });
    assert.equal(second.eval.status, 'skipped');
    assert.notEqual(second.eval.id, first.eval.id);
    assert.deepEqual(second.jobs, first.jobs);
    const copied = await pipeline.db.pool.query<{ copied_from: number }>('SELECT copied_from FROM evaluations WHERE id = $1', [second.eval.id]);
    assert.equal(String(copied.rows[0]!.copied_from), first.eval.id);
  });
});
