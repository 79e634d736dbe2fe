/**
 * Temporal's per-run limits: every build of an eval reports to it by signal, and a run may take
 * at most 10,000 signals, so an eval of 10,000 derivations must continue as new on the way. The
 * real 10,000-derivation run is `npm run bench -- dag --layers 100 --width 100`; here the eval is
 * sent as many build results as thousands of builds would send, while its own build is held.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readRunSummary, startLocalEval } from '../../cli/run-progress.ts';
import { historyUse, SIGNALS_PER_RUN_LIMIT } from '../../temporal/history-use.ts';
import { buildFinishedSignal, evalWorkflowId, SIGNALS_BEFORE_CONTINUE } from '../../workflows/definitions.ts';
import { startPipeline, waitForEvalWorkflow, waitUntil, writeJobset, type Pipeline } from './harness.ts';

/** Signals in flight at once. */
const SENDERS = 32;

describe('pipeline: history limits', () => {
  let pipeline: Pipeline;
  before(async () => {
    pipeline = await startPipeline();
  });
  after(async () => {
    await pipeline?.close();
  });

  it('continues an eval as new before its build results near the per-run signal limit, and finishes it', async () => {
    const gate = join(pipeline.dir, `gate-${randomUUID()}`);
    const path = await writeJobset(pipeline.dir, {
      held: { script: `while [ ! -e ${gate} ]; do /bin/sleep 0.1; done` },
      after: { deps: ['held'] },
    });
    const { evalId } = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path });
    const workflowId = evalWorkflowId(evalId);
    await waitUntil(async () => {
      const { rows } = await pipeline.db.pool.query<{ status: string }>(
        `SELECT b.status FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = 'held'`,
      );
      return rows[0]?.status === 'building';
    }, 'the held build runs');

    // What thousands of finished builds would send; the payload only wakes the eval (state is in PostgreSQL).
    const handle = pipeline.client.workflow.getHandle(workflowId);
    const total = SIGNALS_BEFORE_CONTINUE + 200;
    let sent = 0;
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        while (sent < total) {
          sent++;
          await handle.signal(buildFinishedSignal, { drvPath: `/nix/store/${'0'.repeat(32)}-elsewhere.drv`, status: 'succeeded' });
        }
      }),
    );
    await waitUntil(async () => (await historyUse(pipeline.client, workflowId)).runs >= 2, 'the eval continues as new', 120_000);

    await writeFile(gate, '');
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId);
    const summary = await readRunSummary(pipeline.db.pool, evalId);
    assert.equal(summary.eval.status, 'succeeded');
    assert.deepEqual(
      summary.jobs.map((job) => [job.attr, job.status]).sort(),
      [
        ['after', 'succeeded'],
        ['held', 'succeeded'],
      ],
    );
    const use = await historyUse(pipeline.client, workflowId);
    assert.ok(use.runs >= 2, `the eval ran ${use.runs} time(s)`);
    assert.ok(use.mostSignals < SIGNALS_PER_RUN_LIMIT, `one run took ${use.mostSignals} signals`);
  });
});
