/**
 * Fair sharing of builders between projects (docs/architecture.md, "Scheduler"): builds waiting
 * on a queue are dispatched in proportion to their projects' scheduling shares, through Temporal's
 * task-queue fairness keys. Two projects queue the same number of builds while no builder runs,
 * the first one first; then one builder with one slot works through them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLocalEval } from '../../cli/run-progress.ts';
import { ensureLocalProject } from '../../forges/projects.ts';
import { buildWorkflowId } from '../../workflows/definitions.ts';
import { startPipeline, waitForEvalWorkflow, waitUntil, writeJobset, type Pipeline } from './harness.ts';

const JOBS = 12;

describe('pipeline: fair sharing between projects', () => {
  let pipeline: Pipeline;
  before(async () => {
    // Coordinator, evaluator and signer only: the builder comes once every build waits.
    pipeline = await startPipeline({ env: { HARMONIA_CI_BUILDER_MAX_JOBS: '1' }, workers: { builder: false } });
  });
  after(async () => {
    await pipeline?.close();
  });

  it('dispatches waiting builds in proportion to the projects’ scheduling shares', async () => {
    const jobs = (prefix: string) => Object.fromEntries(Array.from({ length: JOBS }, (_, i) => [`${prefix}${i}`, {}]));
    const small = await writeJobset(pipeline.dir, jobs('small'), { file: 'small.nix' });
    const large = await writeJobset(pipeline.dir, jobs('large'), { file: 'large.nix' });
    const largeProject = await ensureLocalProject(pipeline.db.pool, large, undefined);
    await pipeline.db.pool.query('UPDATE projects SET scheduling_shares = 300 WHERE name = $1', [largeProject]);

    // The project with fewer shares queues all its builds first.
    const first = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: small });
    const queued = async (): Promise<number> => {
      const { rows } = await pipeline.db.pool.query<{ count: string }>('SELECT count(*) FROM build_jobs WHERE workflow_id IS NOT NULL');
      return Number(rows[0]!.count);
    };
    await waitUntil(async () => (await queued()) === JOBS, 'the first project’s builds wait');
    const second = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: large });
    await waitUntil(async () => (await queued()) === 2 * JOBS, 'the second project’s builds wait');
    // Each build workflow has scheduled its build once its history shows it.
    const { rows: drvs } = await pipeline.db.pool.query<{ drv_path: string }>('SELECT drv_path FROM build_jobs');
    await waitUntil(async () => {
      const scheduled = await Promise.all(
        drvs.map(async ({ drv_path }) => {
          const history = await pipeline.client.workflow.getHandle(buildWorkflowId(drv_path)).fetchHistory();
          return history.events!.some((event) => event.activityTaskScheduledEventAttributes);
        }),
      );
      return scheduled.every(Boolean);
    }, 'every build is on the builder queue');

    const { rows: largeDrv } = await pipeline.db.pool.query<{ drv_path: string }>(
      "SELECT drv_path FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = 'large0'",
    );
    const history = await pipeline.client.workflow.getHandle(buildWorkflowId(largeDrv[0]!.drv_path)).fetchHistory();
    const priority = history.events!.find((event) => event.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes!.priority;
    assert.equal(priority?.fairnessKey, largeProject);
    assert.equal(priority?.fairnessWeight, 3);

    await pipeline.addWorkers({ coordinator: false, evaluator: false, signer: false, builder: true, host: 'fair-builder' });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.evalId);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, second.evalId);

    const { rows } = await pipeline.db.pool.query<{ name: string; status: string }>(
      'SELECT d.name, b.status FROM build_jobs b JOIN derivations d USING (drv_path) ORDER BY b.started_at, b.id',
    );
    assert.ok(rows.every((row) => row.status === 'succeeded'), JSON.stringify(rows));
    // First come, first served would build all of the first project before any of the second.
    const firstHalf = rows.slice(0, JOBS).map((row) => row.name);
    const fromLarge = firstHalf.filter((name) => name.startsWith('large')).length;
    assert.ok(fromLarge >= JOBS / 2, `the project with three times the shares had ${fromLarge} of the first ${JOBS} builds: ${firstHalf.join(' ')}`);
  });
});
