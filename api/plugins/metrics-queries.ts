/**
 * What `/metrics` reads from PostgreSQL: counts grouped by a few labels, each query served by an
 * index on the active rows or a single pass over a table, run side by side once per refresh.
 * Builds map to projects through the evals that planned them; a build two projects share counts
 * for both.
 */
import type { Pool } from 'pg';
import { builderQueue } from '../../workflows/definitions.ts';
import { queryHistogram, type HistogramSeries } from './metrics-histogram.ts';

/** Eval durations: seconds to days. */
export const EVAL_BUCKETS = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400];
/** Build durations and waits: a second to a day. */
export const BUILD_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

/** A builder seen within this long counts as present (it heartbeats far more often). */
export const SEEN_WITHIN_SECONDS = 60;

/** build_jobs.status → the state names the metrics use. */
const BUILD_STATE_SQL = `CASE b.status WHEN 'pending' THEN 'queued' WHEN 'building' THEN 'running' WHEN 'uploading' THEN 'running' ELSE b.status END`;

export interface QueueDepth {
  queue: string;
  system: string;
  waiting: number;
  oldestSeconds: number;
}

export interface BuilderState {
  builder: string;
  running: number;
  maxJobs: number;
  draining: boolean;
  secondsSinceSeen: number;
}

export interface FleetSnapshot {
  evals: { queued: number; running: number; oldestRunningSeconds: number };
  evalDurations: Array<HistogramSeries<'project' | 'outcome'>>;
  builds: Array<{ state: string; system: string; count: number }>;
  queues: QueueDepth[];
  buildDurations: Array<HistogramSeries<'system'>>;
  buildWaits: Array<HistogramSeries<'system'>>;
  projects: Array<{ project: string; retries: number; failures: number; shares: number; builderSeconds: number }>;
  builders: BuilderState[];
  /** Present builders that are not draining, per system they serve (0 for a system only waiting builds name). */
  availableBySystem: Array<{ system: string; count: number }>;
  deliveries: Array<{ forge: string; state: string; count: number; oldestSeconds: number }>;
  statusesPending: number;
  outputsPublished: number;
}

async function evalCounts(pool: Pool): Promise<FleetSnapshot['evals']> {
  const { rows } = await pool.query<{ queued: number; running: number; oldest: number }>(
    `SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued, count(*) FILTER (WHERE status = 'running')::int AS running,
            coalesce(extract(epoch FROM now() - min(started_at) FILTER (WHERE status = 'running')), 0)::float8 AS oldest
       FROM evaluations WHERE status IN ('queued', 'running')`,
  );
  const row = rows[0]!;
  return { queued: row.queued, running: row.running, oldestRunningSeconds: Math.max(0, row.oldest) };
}

async function buildCounts(pool: Pool): Promise<FleetSnapshot['builds']> {
  const { rows } = await pool.query<{ state: string; system: string; count: number }>(
    `SELECT ${BUILD_STATE_SQL} AS state, d.system, count(*)::int AS count
       FROM build_jobs b JOIN derivations d ON d.drv_path = b.drv_path
      GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return rows;
}

/** Builds whose workflow waits for a builder: started by their eval, not yet on a host. */
async function queueDepths(pool: Pool): Promise<QueueDepth[]> {
  const { rows } = await pool.query<{ system: string; features: string[]; waiting: number; oldest: number }>(
    `SELECT d.system, d.required_system_features AS features, count(*)::int AS waiting,
            coalesce(max(extract(epoch FROM now() - r.ready_at)), 0)::float8 AS oldest
       FROM build_jobs b
       JOIN derivations d ON d.drv_path = b.drv_path
       CROSS JOIN LATERAL (SELECT min(e.subscribed_at) AS ready_at FROM evaluation_builds e WHERE e.build_id = b.id) r
      WHERE b.status = 'pending' AND b.workflow_id IS NOT NULL
      GROUP BY 1, 2`,
  );
  const byQueue = new Map<string, QueueDepth>();
  for (const row of rows) {
    const queue = builderQueue(row.system, row.features);
    const entry = byQueue.get(queue) ?? { queue, system: row.system, waiting: 0, oldestSeconds: 0 };
    entry.waiting += row.waiting;
    entry.oldestSeconds = Math.max(entry.oldestSeconds, row.oldest);
    byQueue.set(queue, entry);
  }
  return [...byQueue.values()];
}

async function projectCounts(pool: Pool): Promise<FleetSnapshot['projects']> {
  const { rows } = await pool.query<{ project: string; retries: number; failures: number; shares: number; builder_seconds: number }>(
    `WITH troubled AS (
       SELECT DISTINCT v.project_id, b.id, greatest(b.attempts - 1, 0) AS retries, b.status IN ('failed', 'timed-out') AS failed
         FROM build_jobs b
         JOIN evaluation_builds e ON e.build_id = b.id
         JOIN evaluations v ON v.id = e.eval_id
        WHERE b.attempts > 1 OR b.status IN ('failed', 'timed-out')
     ), totals AS (
       SELECT project_id, sum(retries)::int AS retries, count(*) FILTER (WHERE failed)::int AS failures
         FROM troubled GROUP BY project_id
     )
     SELECT p.name AS project, coalesce(t.retries, 0) AS retries, coalesce(t.failures, 0) AS failures,
            f.scheduling_shares AS shares, f.builder_seconds::float8 AS builder_seconds
       FROM projects p
       JOIN project_fairness f ON f.project_id = p.id
       LEFT JOIN totals t ON t.project_id = p.id
      ORDER BY p.name`,
  );
  return rows.map((row) => ({ project: row.project, retries: row.retries, failures: row.failures, shares: row.shares, builderSeconds: row.builder_seconds }));
}

async function builderStates(pool: Pool): Promise<{ builders: BuilderState[]; availableBySystem: FleetSnapshot['availableBySystem'] }> {
  const nodes = await pool.query<{ name: string; systems: string[]; max_jobs: number; draining: boolean; since: number; running: number }>(
    `SELECT n.name, n.systems, n.max_jobs, n.draining, extract(epoch FROM now() - n.last_seen_at)::float8 AS since,
            (SELECT count(*)::int FROM build_jobs b WHERE b.node = n.name AND b.status IN ('building', 'uploading')) AS running
       FROM nodes n ORDER BY n.name`,
  );
  const waitingSystems = await pool.query<{ system: string }>(
    `SELECT DISTINCT d.system FROM build_jobs b JOIN derivations d ON d.drv_path = b.drv_path
      WHERE b.status = 'pending' AND b.workflow_id IS NOT NULL`,
  );
  const available = new Map<string, number>(waitingSystems.rows.map((row) => [row.system, 0]));
  const builders = nodes.rows.map((row) => {
    const secondsSinceSeen = Math.max(0, row.since);
    if (!row.draining && secondsSinceSeen <= SEEN_WITHIN_SECONDS) {
      for (const system of row.systems) available.set(system, (available.get(system) ?? 0) + 1);
    }
    return { builder: row.name, running: row.running, maxJobs: row.max_jobs, draining: row.draining, secondsSinceSeen };
  });
  return { builders, availableBySystem: [...available].map(([system, count]) => ({ system, count })) };
}

async function deliveryCounts(pool: Pool): Promise<FleetSnapshot['deliveries']> {
  const { rows } = await pool.query<{ forge: string; state: string; count: number; oldest: number }>(
    `SELECT forge, status AS state, count(*)::int AS count, extract(epoch FROM now() - min(created_at))::float8 AS oldest
       FROM forge_deliveries GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return rows.map((row) => ({ forge: row.forge, state: row.state, count: row.count, oldestSeconds: Math.max(0, row.oldest) }));
}

async function singleCount(pool: Pool, sql: string): Promise<number> {
  const { rows } = await pool.query<{ count: number }>(sql);
  return rows[0]?.count ?? 0;
}

/** Reads everything `/metrics` exports from PostgreSQL. */
export async function readFleetSnapshot(pool: Pool): Promise<FleetSnapshot> {
  const [evals, evalDurations, builds, queues, buildDurations, buildWaits, projects, builderInfo, deliveries, statusesPending, outputsPublished] =
    await Promise.all([
      evalCounts(pool),
      queryHistogram(
        pool,
        `SELECT p.name AS project, v.status AS outcome, extract(epoch FROM v.finished_at - v.started_at)::float8 AS seconds
           FROM evaluations v JOIN projects p ON p.id = v.project_id
          WHERE v.finished_at IS NOT NULL AND v.started_at IS NOT NULL`,
        ['project', 'outcome'] as const,
        EVAL_BUCKETS,
      ),
      buildCounts(pool),
      queueDepths(pool),
      queryHistogram(
        pool,
        `SELECT d.system, extract(epoch FROM b.finished_at - b.started_at)::float8 AS seconds
           FROM build_jobs b JOIN derivations d ON d.drv_path = b.drv_path
          WHERE b.finished_at IS NOT NULL AND b.started_at IS NOT NULL AND b.status IN ('succeeded', 'failed', 'timed-out', 'failed-with-output')`,
        ['system'] as const,
        BUILD_BUCKETS,
      ),
      queryHistogram(
        pool,
        `SELECT d.system, greatest(0, extract(epoch FROM b.started_at - r.ready_at))::float8 AS seconds
           FROM build_jobs b
           JOIN derivations d ON d.drv_path = b.drv_path
           CROSS JOIN LATERAL (SELECT min(e.subscribed_at) AS ready_at FROM evaluation_builds e WHERE e.build_id = b.id) r
          WHERE b.started_at IS NOT NULL AND r.ready_at IS NOT NULL`,
        ['system'] as const,
        BUILD_BUCKETS,
      ),
      projectCounts(pool),
      builderStates(pool),
      deliveryCounts(pool),
      singleCount(pool, `SELECT count(*)::int AS count FROM forge_statuses WHERE state = 'pending'`),
      singleCount(pool, `SELECT count(*)::int AS count FROM derivation_outputs WHERE registered_at IS NOT NULL`),
    ]);
  return { evals, evalDurations, builds, queues, buildDurations, buildWaits, projects, ...builderInfo, deliveries, statusesPending, outputsPublished };
}
