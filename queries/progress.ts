/**
 * Build progress of evals: the one count the eval workflow, the commit statuses, the dashboard
 * and the command line agree on. A page of evals is counted in one statement, not one per eval.
 */
import type { Pool } from 'pg';
import type { EvalProgress } from '../workflows/types.ts';

export interface ProgressColumns {
  eval_id: string;
  succeeded: string;
  failed: string;
  dep_failed: string;
  cancelled: string;
  timed_out: string;
  building: string;
  pending: string;
  planned: string;
  cached: string | null;
}

/**
 * The progress columns of the evals whose ids `evalIds` (an SQL expression of type bigint[])
 * holds, one row each. Evals without builds still get a row (all zero) through the LEFT JOIN;
 * count(b.id) skips the missing build.
 */
export const progressSql = (evalIds: string): string => `SELECT ev.id AS eval_id,
            count(*) FILTER (WHERE b.status = 'succeeded') AS succeeded,
            count(*) FILTER (WHERE b.status IN ('failed', 'failed-with-output')) AS failed,
            count(*) FILTER (WHERE b.status = 'dep-failed') AS dep_failed,
            count(*) FILTER (WHERE b.status = 'cancelled') AS cancelled,
            count(*) FILTER (WHERE b.status = 'timed-out') AS timed_out,
            count(*) FILTER (WHERE b.status IN ('building', 'uploading')) AS building,
            count(*) FILTER (WHERE b.status = 'pending') AS pending,
            count(b.id) AS planned,
            ev.cached_jobs AS cached
       FROM evaluations ev
       LEFT JOIN evaluation_builds e ON e.eval_id = ev.id
       LEFT JOIN build_jobs b ON b.id = e.build_id
      WHERE ev.id = ANY(${evalIds})
      GROUP BY ev.id`;
const PROGRESS_SQL = progressSql('$1::bigint[]');

export function toProgress(row: ProgressColumns | undefined): EvalProgress {
  const n = (key: Exclude<keyof ProgressColumns, 'eval_id'>): number => Number(row?.[key] ?? 0);
  return {
    total: n('planned') + n('cached'),
    cached: n('cached'),
    succeeded: n('succeeded'),
    failed: n('failed'),
    depFailed: n('dep_failed'),
    cancelled: n('cancelled'),
    timedOut: n('timed_out'),
    building: n('building'),
    pending: n('pending'),
    done: n('building') + n('pending') === 0,
  };
}

/** The progress of each eval, by eval id, in one query; an unknown id counts as an eval with nothing planned. */
export async function countProgressOf(pool: Pool, evalIds: readonly string[]): Promise<Map<string, EvalProgress>> {
  const { rows } = await pool.query<ProgressColumns>(PROGRESS_SQL, [evalIds]);
  const byId = new Map(rows.map((row) => [String(row.eval_id), row]));
  return new Map(evalIds.map((id) => [id, toProgress(byId.get(id))]));
}

/** The progress of one eval. */
export async function countProgress(pool: Pool, evalId: string): Promise<EvalProgress> {
  return toProgress((await pool.query<ProgressColumns>(PROGRESS_SQL, [[evalId]])).rows[0]);
}
