/** The builder nodes: each registered one with its running builds, and how many reported in lately. */
import type { Pool } from 'pg';
import { iso } from './time.ts';

export interface NodeSummary {
  name: string;
  systems: string[];
  features: string[];
  maxJobs: number;
  draining: boolean;
  version: string | null;
  registeredAt: string;
  lastSeenAt: string;
  secondsSinceSeen: number;
  /** Builds in `building` or `uploading` on the node. */
  running: number;
}

/** Every registered builder with its running builds. */
export async function listNodes(pool: Pool): Promise<NodeSummary[]> {
  const { rows } = await pool.query<{
    name: string;
    systems: string[];
    features: string[];
    max_jobs: number;
    draining: boolean;
    version: string | null;
    registered_at: Date;
    last_seen_at: Date;
    seconds_since_seen: number;
    running: number;
  }>(
    `SELECT n.name, n.systems, n.features, n.max_jobs, n.draining, n.version, n.registered_at, n.last_seen_at,
            extract(epoch FROM now() - n.last_seen_at)::float8 AS seconds_since_seen,
            (SELECT count(*)::int FROM build_jobs b WHERE b.node = n.name AND b.status IN ('building', 'uploading')) AS running
       FROM nodes n ORDER BY n.name`,
  );
  return rows.map((row) => ({
    name: row.name,
    systems: row.systems,
    features: row.features,
    maxJobs: row.max_jobs,
    draining: row.draining,
    version: row.version,
    registeredAt: iso(row.registered_at)!,
    lastSeenAt: iso(row.last_seen_at)!,
    secondsSinceSeen: Math.max(0, row.seconds_since_seen),
    running: row.running,
  }));
}

/** Builders seen during the last minute, of which `draining` drain; undefined when the database has no `nodes` table yet. */
export async function countRecentNodes(pool: Pool): Promise<{ alive: number; draining: number } | undefined> {
  const { rows } = await pool.query<{ present: boolean }>(`SELECT to_regclass('nodes') IS NOT NULL AS present`);
  if (!rows[0]?.present) return undefined;
  const seen = await pool.query<{ alive: number; draining: number }>(
    `SELECT count(*)::int AS alive, count(*) FILTER (WHERE draining)::int AS draining
       FROM nodes WHERE last_seen_at > now() - interval '1 minute'`,
  );
  const { alive = 0, draining = 0 } = seen.rows[0] ?? {};
  return { alive, draining };
}
