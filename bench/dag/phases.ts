/** Where an eval's time went, from the timestamps the pipeline records in PostgreSQL. */
import type { Pool } from 'pg';

const ms = (value: string | number | null | undefined): string => `${Number(value ?? Number.NaN).toFixed(0)} ms`;

/** `evaluation …, evaluation done → first build started …; per build (mean): created → started …, started → built and published …`. */
export async function describePhases(pool: Pool, evalId: string): Promise<string> {
  const { rows } = await pool.query<Record<string, string | null>>(
    `SELECT extract(epoch FROM v.finished_at - v.started_at) * 1000 AS evaluation_ms,
            extract(epoch FROM v.started_at - v.created_at) * 1000 AS queued_eval_ms,
            extract(epoch FROM min(b.started_at) - v.finished_at) * 1000 AS first_ms,
            avg(extract(epoch FROM b.started_at - b.created_at) * 1000) AS queued_ms,
            avg(extract(epoch FROM b.finished_at - b.started_at) * 1000) AS building_ms,
            count(b.id) FILTER (WHERE b.started_at IS NOT NULL) AS built
       FROM evaluations v
       LEFT JOIN evaluation_builds e ON e.eval_id = v.id
       LEFT JOIN build_jobs b ON b.id = e.build_id
      WHERE v.id = $1
      GROUP BY v.id`,
    [evalId],
  );
  const row = rows[0] ?? {};
  const parts = [`eval created → evaluating ${ms(row.queued_eval_ms)}`, `evaluation ${ms(row.evaluation_ms)}`];
  if (Number(row.built ?? 0) > 0) {
    parts.push(`evaluation done → first build started ${ms(row.first_ms)}`);
    parts.push(`per build (mean): created → started ${ms(row.queued_ms)}, started → built and published ${ms(row.building_ms)}`);
  }
  return parts.join('; ');
}

/**
 * Medians of each step of a link in a chain: dependency finished → dependent's workflow started
 * (the eval's pass), → a builder took it (build workflow's first task and the activity's dispatch),
 * → built and published (the builder, the signer, the result recorded).
 */
export async function describeChainSteps(pool: Pool, evalId: string): Promise<string> {
  const { rows } = await pool.query<Record<string, string | null>>(
    `WITH link AS (
       SELECT extract(epoch FROM e.subscribed_at - max(ib.finished_at)) * 1000 AS dispatch,
              extract(epoch FROM b.started_at - e.subscribed_at) * 1000 AS pickup,
              extract(epoch FROM b.finished_at - b.started_at) * 1000 AS build
         FROM evaluation_builds e
         JOIN build_jobs b ON b.id = e.build_id
         JOIN derivation_inputs di ON di.drv_path = b.drv_path
         JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
        WHERE e.eval_id = $1
        GROUP BY b.id, b.started_at, b.finished_at, e.subscribed_at
     )
     SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY dispatch) AS dispatch,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY pickup) AS pickup,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY build) AS build
       FROM link`,
    [evalId],
  );
  const row = rows[0] ?? {};
  return `per link (p50): dependency finished → dependent's workflow started ${ms(row.dispatch)}, → taken by a builder ${ms(row.pickup)}, → built, published and recorded ${ms(row.build)}`;
}
