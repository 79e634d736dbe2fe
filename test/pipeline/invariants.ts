/**
 * The scheduler's invariants (activities/coordinator/scheduler.ts) as queries over PostgreSQL:
 * each returns the rows that break one, so a test asserts that none does.
 */
import type { Pool } from 'pg';

export interface Violation {
  invariant: string;
  drvPath: string;
  detail: string;
}

/** Every breach of the scheduler's invariants among the given evals' builds (all evals when none given). */
export async function schedulerViolations(pool: Pool, evalIds?: string[]): Promise<Violation[]> {
  const { rows } = await pool.query<Violation>(
    `WITH scope AS (
       SELECT e.eval_id, v.status AS eval_status, b.*
         FROM evaluation_builds e JOIN evaluations v ON v.id = e.eval_id JOIN build_jobs b ON b.id = e.build_id
        WHERE $1::bigint[] IS NULL OR e.eval_id = ANY($1::bigint[])
     )
     SELECT 'a finished eval waits for no build' AS invariant, s.drv_path AS "drvPath",
            'eval ' || s.eval_id || ' is ' || s.eval_status || ' but the build is ' || s.status AS detail
       FROM scope s
      WHERE s.eval_status IN ('succeeded', 'failed') AND s.status IN ('pending', 'building', 'uploading')
     UNION ALL
     SELECT 'a dep-failed build names a root cause that failed by itself', s.drv_path,
            'root cause ' || coalesce(s.dep_failed_drv_path, 'none') || ' is ' || coalesce(r.status, 'unknown')
       FROM scope s LEFT JOIN build_jobs r ON r.drv_path = s.dep_failed_drv_path
      WHERE s.status = 'dep-failed' AND (r.status IS NULL OR r.status NOT IN ('failed', 'timed-out'))
     UNION ALL
     SELECT 'a dep-failed build has an input that failed', s.drv_path, 'no input failed'
       FROM scope s
      WHERE s.status = 'dep-failed' AND NOT EXISTS (
              SELECT 1 FROM derivation_inputs di JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
               WHERE di.drv_path = s.drv_path AND ib.status IN ('failed', 'dep-failed', 'timed-out'))
     UNION ALL
     SELECT 'a started build waited for no input', s.drv_path, 'input ' || ib.drv_path || ' is ' || ib.status
       FROM scope s
       JOIN derivation_inputs di ON di.drv_path = s.drv_path
       JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
      WHERE s.status IN ('succeeded', 'failed', 'timed-out') AND s.started_at IS NOT NULL AND ib.status <> 'succeeded'`,
    [evalIds ?? null],
  );
  return rows;
}
