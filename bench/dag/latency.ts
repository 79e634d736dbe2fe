/** How fast a pipeline reacts: from a build's last input finishing to the build being dispatched and started. */
import type { Pool } from 'pg';

export interface EdgeLatencies {
  /** To the eval starting the dependent's build workflow (its task is on the builder queue). */
  dispatched: number[];
  /** To a builder starting the dependent's build. */
  started: number[];
}

/** Milliseconds per build with inputs in the eval, each list sorted. */
export async function edgeLatencies(pool: Pool, evalId: string): Promise<EdgeLatencies> {
  const { rows } = await pool.query<{ dispatched_ms: number; started_ms: number }>(
    `SELECT extract(epoch FROM e.subscribed_at - max(ib.finished_at)) * 1000 AS dispatched_ms,
            extract(epoch FROM b.started_at - max(ib.finished_at)) * 1000 AS started_ms
       FROM evaluation_builds e
       JOIN build_jobs b ON b.id = e.build_id
       JOIN derivation_inputs di ON di.drv_path = b.drv_path
       JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
      WHERE e.eval_id = $1
      GROUP BY b.id, b.started_at, e.subscribed_at`,
    [evalId],
  );
  const sorted = (values: number[]): number[] => values.sort((a, b) => a - b);
  return {
    dispatched: sorted(rows.map((row) => Math.max(0, Number(row.dispatched_ms)))),
    started: sorted(rows.map((row) => Number(row.started_ms))),
  };
}

/** The value at percentile p of a sorted list. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `dependency finished → dependent dispatched p50 … p99 …, → started on a builder p50 … p99 …`. */
export function describeLatencies({ dispatched, started }: EdgeLatencies): string {
  const pair = (values: number[]): string => `p50 ${percentile(values, 50).toFixed(0)} ms, p99 ${percentile(values, 99).toFixed(0)} ms`;
  return `dependency finished → dependent dispatched ${pair(dispatched)}; → started on a builder ${pair(started)} (${started.length} builds)`;
}
