/**
 * advanceEval: one pass of an eval's wavefront. Everything it decides comes from PostgreSQL,
 * so passes are idempotent and a lost wake-up signal only delays the next one.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { buildWorkflow } from '../../workflows/build.ts';
import { buildWorkflowId, COORDINATOR_QUEUE, subscribeSignal } from '../../workflows/definitions.ts';
import { searchAttributePairs } from '../../workflows/search.ts';
import type { EvalProgress } from '../../workflows/types.ts';
import { countProgress } from '../../queries/progress.ts';
import type { AdvanceEvalRequest } from '../types.ts';

/** Workflow starts in flight at once from one pass. */
const START_CONCURRENCY = 16;

interface Candidate {
  id: string;
  drv_path: string;
  name: string;
  system: string;
  required_system_features: string[];
  /** The eval's project and its scheduling shares (fair sharing of builders). */
  project: string;
  scheduling_shares: number;
  /** At or above REBUILD_PRIORITY: a manual rebuild. */
  priority: number;
}

/** build_jobs.priority of a manual rebuild (activities/coordinator/evals.ts sets it). */
export const REBUILD_PRIORITY = 1000;

/** Fairness weight of a project: its shares relative to the default 100, within Temporal's range. */
export function fairnessWeight(shares: number): number {
  return Math.min(1000, Math.max(0.001, shares / 100));
}

export async function advanceEval(
  pool: Pool,
  client: Client,
  request: AdvanceEvalRequest,
  heartbeatTimeoutMs?: number,
): Promise<EvalProgress> {
  const { evalId, evalWorkflowId, window } = request;

  // A build cancelled because its other evals went away is wanted again by this one.
  await pool.query(
    `UPDATE build_jobs b SET status = 'pending', workflow_id = NULL, finished_at = NULL, updated_at = now()
       FROM evaluation_builds e
      WHERE e.eval_id = $1 AND e.build_id = b.id AND e.subscribed_at IS NULL AND b.status = 'cancelled'`,
    [evalId],
  );
  await propagateDepFailures(pool, evalId);

  const open = await pool.query<{ count: string }>(
    `SELECT count(*) FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
      WHERE e.eval_id = $1 AND e.subscribed_at IS NOT NULL AND b.status IN ('pending', 'building', 'uploading')`,
    [evalId],
  );
  const room = window - Number(open.rows[0]!.count);
  if (room > 0) {
    const { rows } = await pool.query<Candidate>(
      `SELECT b.id, b.drv_path, d.name, d.system, d.required_system_features, b.priority, p.name AS project, p.scheduling_shares
         FROM evaluation_builds e
         JOIN evaluations v ON v.id = e.eval_id
         JOIN projects p ON p.id = v.project_id
         JOIN build_jobs b ON b.id = e.build_id
         JOIN derivations d ON d.drv_path = b.drv_path
        WHERE e.eval_id = $1 AND e.subscribed_at IS NULL AND b.status IN ('pending', 'building', 'uploading')
          AND NOT EXISTS (SELECT 1 FROM derivation_inputs di JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
                           WHERE di.drv_path = b.drv_path AND ib.status <> 'succeeded')
        ORDER BY b.priority DESC, b.id
        LIMIT $2`,
      [evalId, room],
    );
    await subscribeAll(pool, client, { evalId, evalWorkflowId, heartbeatTimeoutMs }, rows);
  }
  return countProgress(pool, evalId);
}

/** Marks builds whose inputs failed as dep-failed, naming the root cause, until nothing changes. */
async function propagateDepFailures(pool: Pool, evalId: string): Promise<void> {
  for (;;) {
    const { rowCount } = await pool.query(
      `UPDATE build_jobs b
          SET status = 'dep-failed', dep_failed_drv_path = f.root, finished_at = now(), updated_at = now()
         FROM (SELECT DISTINCT ON (pb.id) pb.id,
                      CASE WHEN ib.status = 'dep-failed' THEN ib.dep_failed_drv_path ELSE ib.drv_path END AS root
                 FROM evaluation_builds e
                 JOIN build_jobs pb ON pb.id = e.build_id
                 JOIN derivation_inputs di ON di.drv_path = pb.drv_path
                 JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
                WHERE e.eval_id = $1 AND pb.status = 'pending' AND pb.workflow_id IS NULL
                  AND ib.status IN ('failed', 'dep-failed', 'timed-out')
                ORDER BY pb.id, ib.drv_path) f
        WHERE b.id = f.id`,
      [evalId],
    );
    if (!rowCount) return;
  }
}

/** Starts (or joins) each build's workflow with this eval as a subscriber. */
async function subscribeAll(
  pool: Pool,
  client: Client,
  { evalId, evalWorkflowId, heartbeatTimeoutMs }: { evalId: string; evalWorkflowId: string; heartbeatTimeoutMs?: number },
  candidates: Candidate[],
): Promise<void> {
  const queue = [...candidates];
  const started: Array<{ id: string; workflowId: string }> = [];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const workflowId = buildWorkflowId(next.drv_path);
      await client.workflow.signalWithStart<typeof buildWorkflow, [string]>('buildWorkflow', {
        workflowId,
        taskQueue: COORDINATOR_QUEUE,
        args: [
          {
            drvPath: next.drv_path,
            drvName: next.name,
            system: next.system,
            requiredSystemFeatures: next.required_system_features,
            subscribers: [evalWorkflowId],
            ...(heartbeatTimeoutMs ? { heartbeatTimeoutMs } : {}),
            // Fairness keys are at most 64 bytes.
            fairness: { key: Buffer.from(next.project).subarray(0, 64).toString(), weight: fairnessWeight(next.scheduling_shares) },
            ...(next.priority >= REBUILD_PRIORITY ? { urgent: true } : {}),
          },
        ],
        signal: subscribeSignal,
        signalArgs: [evalWorkflowId],
        typedSearchAttributes: searchAttributePairs({ drvName: next.name, system: next.system, status: 'pending' }) as never,
        staticSummary: `build ${next.name} (${next.system})`,
      });
      started.push({ id: next.id, workflowId });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(START_CONCURRENCY, queue.length) }, worker));
  } finally {
    if (started.length > 0) {
      const ids = started.map((s) => s.id);
      await pool.query(
        'UPDATE evaluation_builds SET subscribed_at = now() WHERE eval_id = $1 AND build_id = ANY($2::bigint[])',
        [evalId, ids],
      );
      await pool.query(
        `UPDATE build_jobs b SET workflow_id = u.workflow_id
           FROM unnest($1::bigint[], $2::text[]) AS u(id, workflow_id)
          WHERE b.id = u.id AND b.workflow_id IS NULL`,
        [ids, started.map((s) => s.workflowId)],
      );
    }
  }
}
