/**
 * The scheduler: the one place that decides when a build may start, what its builder gets as
 * inputs, when it is dep-failed and because of what, which builds go back to pending on a rebuild
 * or are withdrawn when their eval goes away, and that tells evals a build has finished.
 * (docs/architecture.md, "Scheduler".)
 *
 * The eval gates on inputs, not the build. Each pass of an eval's wavefront (`advanceEval`)
 * starts the build workflows of derivations whose input builds have all succeeded, at most
 * `window` open at once, so the Temporal server never holds thousands of idle build workflows
 * waiting on their inputs. The build workflow does not check again: `succeeded` is final (a
 * rebuild resets failed, timed-out and cancelled builds only), so inputs found succeeded stay so.
 * The plan lives in PostgreSQL, so every pass is idempotent and a lost wake-up only delays.
 *
 * Invariants (test/pipeline/invariants.ts checks them after pipeline tests):
 * 1. Every build an unfinished eval needs is running, queued, or will be started: it has a build
 *    workflow the eval subscribed to, or it is pending without one and a later pass of the eval
 *    starts it once its inputs have succeeded, or marks it dep-failed once one has failed. A
 *    build withdrawn or cancelled while an unfinished eval still needs it is started again on
 *    that eval's next pass, whatever the order of the withdrawal and the eval's subscription;
 *    and every few minutes a pass checks that the build workflows it waits for still exist
 *    (`repairLostBuilds`), restarting any that vanished, and says so.
 * 2. A finished eval has no build it still waits for: an eval ends succeeded or failed only when
 *    none of its builds is pending, building or uploading (`countProgress`). A cancelled eval
 *    may leave a running build it shared: that one finishes for the cache.
 * 3. A build is dep-failed only when an input failed, timed out or is dep-failed itself, and it
 *    names as root cause a build that failed on its own.
 * 4. Every result reaches each subscribed eval: by signal (`announceBuildResult`), and in any
 *    case from PostgreSQL on the eval's next pass, at most its poll interval later.
 * 5. One build workflow per derivation across all evals (started or subscribed to, `startBuilds`).
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { buildFinishedSignal, unsubscribeSignal } from '../../workflows/definitions.ts';
import type { BuildResult, BuildStatus, EvalProgress } from '../../workflows/types.ts';
import { progressSql, toProgress, type ProgressColumns } from '../../queries/progress.ts';
import type { AdvanceEvalRequest, BuildInputs } from '../types.ts';
import { overShare, startBuilds, type BuildCandidate } from './build-starts.ts';
import { builderInputColumns, inputOutputs, toBuildInputs } from './build-inputs.ts';

/** Build states that fail the builds depending on them. */
export const FAILED_STATUSES: readonly BuildStatus[] = ['failed', 'dep-failed', 'timed-out'];

/** build_jobs.priority of a manual rebuild: it goes before everything else waiting. */
export const REBUILD_PRIORITY = 1000;

/**
 * The input builds of derivation `drv` (an SQL expression) that have not succeeded, each with the
 * root cause it passes on if it failed: itself, or the root cause it names.
 */
function unfinishedInputs(drv: string): string {
  return `SELECT ib.drv_path, ib.status,
                 CASE WHEN ib.status = 'dep-failed' THEN ib.dep_failed_drv_path ELSE ib.drv_path END AS root_cause
            FROM derivation_inputs di JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
           WHERE di.drv_path = ${drv} AND ib.status NOT IN ('succeeded', 'failed-with-output')`;
}

/**
 * Whether candidate build `b` may skip `beginBuild` in its workflow (column `first_run`): its row
 * is exactly as `beginBuild` would leave it for a first run (pending, never started, nothing to
 * reset). Whether no run of its workflow ever existed is checked on the start (build-starts.ts,
 * `startOrSubscribe`). Cheap: the candidates are limited before `begunColumn` reads the inputs.
 */
const FIRST_RUN_COLUMN = `(b.status = 'pending' AND b.workflow_id IS NULL AND b.started_at IS NULL AND b.finished_at IS NULL
  AND b.error IS NULL AND b.dep_failed_drv_path IS NULL AND b.exit_code IS NULL) AS first_run`;

/** Column `begun` of candidate `c` (with `drv_path` and `first_run`): the builder's inputs as `beginBuild` would answer them, for a first run. */
function begunColumn(c: string): string {
  return `CASE WHEN ${c}.first_run THEN (SELECT row_to_json(f) FROM (SELECT ${builderInputColumns(`${c}.drv_path`)}) f) END AS begun`;
}

/** One pass of an eval's wavefront: revive, propagate failures, start what is ready, count. */
export async function advanceEval(
  pool: Pool,
  client: Client,
  request: AdvanceEvalRequest,
  options: {
    heartbeatTimeoutMs?: number | undefined;
    maxAttempts?: number | undefined;
    publishDeadlineMs?: number | undefined;
    /** Told about repairs (lost builds started again). */
    warn?: (message: string) => void;
  } = {},
): Promise<EvalProgress> {
  const { evalId, evalWorkflowId, window } = request;

  await reviveCancelled(pool, evalId);
  const repaired = request.repair ? await repairLostBuilds(pool, client, evalId, options.warn) : 0;
  await propagateDepFailures(pool, evalId);

  // One statement: the builds to start now (at most `window` open at once) and the eval's
  // progress, counted before they start (starting changes no status). On the embedded database
  // every statement waits for its one connection, and a pass runs after every build result.
  const { rows } = await pool.query<Partial<BuildCandidate> & ProgressColumns>(
    `WITH standing AS (${overShare('(SELECT project_id FROM evaluations WHERE id = $1)')}),
     open AS (
       SELECT count(*) AS count FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
        WHERE e.eval_id = $1 AND e.subscribed_at IS NOT NULL AND b.status IN ('pending', 'building', 'uploading')
     ),
     candidates AS (
       SELECT b.id, b.drv_path, d.name, d.system, d.required_system_features, b.priority, p.name AS project, p.scheduling_shares,
              coalesce((SELECT over_share FROM standing), false) AS over_share, ${FIRST_RUN_COLUMN}
         FROM evaluation_builds e
         JOIN evaluations v ON v.id = e.eval_id
         JOIN projects p ON p.id = v.project_id
         JOIN build_jobs b ON b.id = e.build_id
         JOIN derivations d ON d.drv_path = b.drv_path
        WHERE e.eval_id = $1 AND e.subscribed_at IS NULL AND b.status IN ('pending', 'building', 'uploading')
          AND NOT EXISTS (${unfinishedInputs('b.drv_path')})
        ORDER BY b.priority DESC, b.id
        LIMIT greatest(0, $2 - (SELECT count FROM open))
     ),
     progress AS (${progressSql('ARRAY[$1::bigint]')})
     SELECT c.*, ${begunColumn('c')}, progress.* FROM progress LEFT JOIN candidates c ON true
      ORDER BY c.priority DESC, c.id`,
    [evalId, window],
  );
  const candidates = rows.filter((row): row is BuildCandidate & ProgressColumns => row.id != null);
  if (candidates.length > 0) {
    await startBuilds(
      pool,
      client,
      {
        evalId,
        evalWorkflowId,
        heartbeatTimeoutMs: options.heartbeatTimeoutMs,
        maxAttempts: options.maxAttempts,
        publishDeadlineMs: options.publishDeadlineMs,
        urgentFrom: REBUILD_PRIORITY,
      },
      candidates,
    );
  }
  const progress = toProgress(rows[0]);
  return repaired > 0 ? { ...progress, repaired } : progress;
}

/** How a build's start is configured, as `advanceEval` takes it. */
export interface StartSettings {
  heartbeatTimeoutMs?: number | undefined;
  maxAttempts?: number | undefined;
  publishDeadlineMs?: number | undefined;
}

/**
 * The reaction to a success, run where the build recorded it: in each subscribed eval, starts the
 * builds that this success made ready, by the same rule as the eval's pass (every input build
 * succeeded, at most `window` open), without waiting for the eval's workflow to be told and run
 * its pass: that saves a workflow task and a whole pass on the way from one build to the next.
 * The eval's pass still follows (the build's signal wakes it) and finds these started; a build
 * both start is one workflow (start, or subscribe when it runs), so a race costs at most a duplicate subscribe.
 * Failures are left to the pass (dep-failed propagation, windows filled elsewhere, repairs).
 */
export async function startReadyDependents(
  pool: Pool,
  client: Client,
  drvPath: string,
  evalWorkflowIds: string[],
  window: number,
  settings: StartSettings = {},
): Promise<void> {
  const evals = new Map<string, string>();
  for (const id of evalWorkflowIds) {
    const evalId = /^eval\/(\d+)$/.exec(id)?.[1];
    if (evalId) evals.set(evalId, id);
  }
  if (evals.size === 0) return;
  const { rows } = await pool.query<BuildCandidate & { eval_id: string }>(
    `WITH open AS (
       SELECT e.eval_id, count(*) AS count
         FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
        WHERE e.eval_id = ANY($1::bigint[]) AND e.subscribed_at IS NOT NULL AND b.status IN ('pending', 'building', 'uploading')
        GROUP BY e.eval_id
     ), ready AS (
       SELECT e.eval_id, b.id, b.drv_path, d.name, d.system, d.required_system_features, b.priority, p.name AS project,
              p.scheduling_shares, coalesce((${overShare('v.project_id')}), false) AS over_share, ${FIRST_RUN_COLUMN},
              row_number() OVER (PARTITION BY e.eval_id ORDER BY b.priority DESC, b.id) AS rank
         FROM derivation_inputs di
         JOIN build_jobs b ON b.drv_path = di.drv_path
         JOIN evaluation_builds e ON e.build_id = b.id
         JOIN evaluations v ON v.id = e.eval_id
         JOIN projects p ON p.id = v.project_id
         JOIN derivations d ON d.drv_path = b.drv_path
        WHERE di.input_drv_path = $2 AND e.eval_id = ANY($1::bigint[]) AND v.status <> 'cancelled'
          AND e.subscribed_at IS NULL AND b.status IN ('pending', 'building', 'uploading')
          AND NOT EXISTS (${unfinishedInputs('b.drv_path')})
     )
     SELECT r.*, ${begunColumn('r')} FROM ready r LEFT JOIN open o ON o.eval_id = r.eval_id
      WHERE r.rank <= $3 - coalesce(o.count, 0)
      ORDER BY r.eval_id, r.rank`,
    [[...evals.keys()], drvPath, window],
  );
  for (const [evalId, evalWorkflowId] of evals) {
    const ready = rows.filter((row) => String(row.eval_id) === evalId);
    if (ready.length === 0) continue;
    await startBuilds(pool, client, { evalId, evalWorkflowId, ...settings, urgentFrom: REBUILD_PRIORITY }, ready);
  }
}

/**
 * A build withdrawn or cancelled (another eval went away, someone cancelled it, its workflow gave
 * up on a vanished builder) is wanted again by this unfinished eval: back to pending, and this
 * eval's subscription forgotten, so this pass starts it again once its inputs are done. Whether
 * the eval had subscribed before or after the withdrawal does not matter.
 */
async function reviveCancelled(pool: Pool, evalId: string): Promise<void> {
  await pool.query(
    `WITH revived AS (
       UPDATE build_jobs b SET status = 'pending', workflow_id = NULL, finished_at = NULL, updated_at = now()
         FROM evaluation_builds e
        WHERE e.eval_id = $1 AND e.build_id = b.id AND b.status = 'cancelled'
       RETURNING b.id
     )
     UPDATE evaluation_builds SET subscribed_at = NULL WHERE eval_id = $1 AND build_id IN (SELECT id FROM revived)`,
    [evalId],
  );
}

/** Describes at once at most this many build workflows. */
const DESCRIBE_CONCURRENCY = 16;

/**
 * Builds this eval waits for whose workflow is gone although their record says they are open
 * (a workflow terminated by hand, a record written after its workflow closed): back to pending
 * for this pass to start again. Returns how many. A workflow closes only after recording its
 * result, so the status guard keeps a build that just finished as it is.
 */
export async function repairLostBuilds(pool: Pool, client: Client, evalId: string, warn?: (message: string) => void): Promise<number> {
  const { rows } = await pool.query<{ id: string; drv_path: string; workflow_id: string }>(
    `SELECT b.id, b.drv_path, b.workflow_id FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
      WHERE e.eval_id = $1 AND e.subscribed_at IS NOT NULL AND b.workflow_id IS NOT NULL
        AND b.status IN ('pending', 'building', 'uploading')`,
    [evalId],
  );
  const lost: typeof rows = [];
  const queue = [...rows];
  const check = async (): Promise<void> => {
    for (let row = queue.shift(); row; row = queue.shift()) {
      const open = await client.workflow
        .getHandle(row.workflow_id)
        .describe()
        .then((description) => description.status.name === 'RUNNING')
        .catch((error: Error) => (error.name === 'WorkflowNotFoundError' ? false : true));
      if (!open) lost.push(row);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, queue.length) }, check));
  if (lost.length === 0) return 0;
  const { rows: reset } = await pool.query<{ drv_path: string }>(
    `WITH reset AS (
       UPDATE build_jobs SET status = 'pending', workflow_id = NULL, updated_at = now()
        WHERE id = ANY($2::bigint[]) AND status IN ('pending', 'building', 'uploading')
       RETURNING id, drv_path
     ), forgotten AS (
       UPDATE evaluation_builds SET subscribed_at = NULL WHERE eval_id = $1 AND build_id IN (SELECT id FROM reset)
     )
     SELECT drv_path FROM reset`,
    [evalId, lost.map((row) => row.id)],
  );
  if (reset.length > 0) {
    warn?.(`eval ${evalId}: ${reset.length} build(s) it waited for had lost their workflow and start again: ${reset.map((r) => r.drv_path).join(', ')}`);
  }
  return reset.length;
}

/** Marks the eval's unstarted builds whose inputs failed as dep-failed, naming the root cause, until nothing changes. */
async function propagateDepFailures(pool: Pool, evalId: string): Promise<void> {
  for (;;) {
    const { rowCount } = await pool.query(
      `UPDATE build_jobs b
          SET status = 'dep-failed', dep_failed_drv_path = f.root_cause, finished_at = now(), updated_at = now()
         FROM (SELECT DISTINCT ON (pb.id) pb.id, w.root_cause
                 FROM evaluation_builds e
                 JOIN build_jobs pb ON pb.id = e.build_id
                 CROSS JOIN LATERAL (${unfinishedInputs('pb.drv_path')}) w
                WHERE e.eval_id = $1 AND pb.status = 'pending' AND pb.workflow_id IS NULL
                  AND w.status = ANY($2::text[])
                ORDER BY pb.id, w.drv_path) f
        WHERE b.id = f.id`,
      [evalId, FAILED_STATUSES],
    );
    if (!rowCount) return;
  }
}

/**
 * Whether a build may start, for build workflows that began before the eval alone gated on
 * inputs (workflows/build.ts keeps their path for replay): none unfinished, or the first failed
 * input's root cause.
 */
export async function checkBuildInputs(pool: Pool, drvPath: string): Promise<{ ready: boolean; rootCause?: string }> {
  const { rows } = await pool.query<{ status: BuildStatus; root_cause: string }>(
    `SELECT w.status, w.root_cause FROM (${unfinishedInputs('$1')}) w ORDER BY w.drv_path`,
    [drvPath],
  );
  const failed = rows.find((row) => FAILED_STATUSES.includes(row.status));
  return failed ? { ready: false, rootCause: failed.root_cause } : { ready: rows.length === 0 };
}

/** What a builder needs besides the `.drv`: input paths and their canonical NAR hashes. */
export async function describeBuildInputs(pool: Pool, drvPath: string): Promise<BuildInputs> {
  const { rows } = await pool.query<{ out_path: string; nar_hash: string | null }>(
    `SELECT i.out_path, i.nar_hash FROM (${inputOutputs('$1')}) i ORDER BY i.out_path`,
    [drvPath],
  );
  return toBuildInputs(rows);
}

/**
 * Puts an eval's failed, timed-out and cancelled builds (all, or those named) and the builds
 * dep-failed because of them back to pending, at rebuild priority; returns how many.
 */
export async function resetBuilds(pool: Pool, evalId: string, drvPaths: string[] | 'failed'): Promise<number> {
  const { rowCount } = await pool.query(
    `WITH chosen AS (
       SELECT b.id, b.drv_path FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
        WHERE e.eval_id = $1 AND b.status IN ('failed', 'timed-out', 'cancelled')
          AND ($2::text[] IS NULL OR b.drv_path = ANY($2::text[]))
     ), affected AS (
       SELECT id FROM chosen
       UNION
       SELECT b.id FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
        WHERE e.eval_id = $1 AND b.status = 'dep-failed'
          AND ($2::text[] IS NULL OR b.dep_failed_drv_path IN (SELECT drv_path FROM chosen))
     ), reset AS (
       UPDATE build_jobs b
          SET status = 'pending', dep_failed_drv_path = NULL, error = NULL, exit_code = NULL, workflow_id = NULL,
              finished_at = NULL, priority = greatest(priority, $3), updated_at = now()
        WHERE b.id IN (SELECT id FROM affected)
       RETURNING b.id
     )
     UPDATE evaluation_builds SET subscribed_at = NULL
      WHERE eval_id = $1 AND build_id IN (SELECT id FROM reset)`,
    [evalId, drvPaths === 'failed' ? null : drvPaths, REBUILD_PRIORITY],
  );
  return rowCount ?? 0;
}

/**
 * An eval went away: builds it planned but nobody started will not happen for it (another eval
 * that still wants one revives it on its next pass), and the build workflows it subscribed to
 * are told; one nobody wants any more is withdrawn unless a builder has it.
 */
export async function releaseEvalBuilds(pool: Pool, client: Client, evalId: string, evalWorkflowId: string): Promise<void> {
  await pool.query(
    `UPDATE build_jobs b SET status = 'cancelled', finished_at = now(), updated_at = now()
       FROM evaluation_builds e
      WHERE e.eval_id = $1 AND e.build_id = b.id AND b.status = 'pending' AND b.workflow_id IS NULL`,
    [evalId],
  );
  const { rows } = await pool.query<{ workflow_id: string }>(
    `SELECT DISTINCT b.workflow_id FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id
      WHERE e.eval_id = $1 AND e.subscribed_at IS NOT NULL AND b.workflow_id IS NOT NULL
        AND b.status IN ('pending', 'building', 'uploading')`,
    [evalId],
  );
  await Promise.all(rows.map(({ workflow_id }) => client.workflow.getHandle(workflow_id).signal(unsubscribeSignal, evalWorkflowId).catch(() => undefined)));
}

/**
 * Tells evals a build has ended; returns the evals told. An eval that finished or was cancelled
 * meanwhile is skipped: it reads results from PostgreSQL anyway.
 */
export async function announceBuildResult(client: Client, result: BuildResult, evalWorkflowIds: string[]): Promise<string[]> {
  await Promise.all(evalWorkflowIds.map((id) => client.workflow.getHandle(id).signal(buildFinishedSignal, result).catch(() => undefined)));
  return evalWorkflowIds;
}

