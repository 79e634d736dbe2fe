/**
 * What operators read: recent evals with counts, one eval's jobs and builds, a build's live log
 * tail, and the builder nodes. Shared by the JSON routes (api/routes/ops.ts) and the command line,
 * which queries PostgreSQL directly when it has a database URL and goes through the API otherwise.
 */
import type { Pool } from 'pg';
import type { BuildStatus, EvalStatus } from '../workflows/types.ts';

export type BuildCounts = Record<BuildStatus, number> & { total: number };

export interface EvalSummary {
  id: string;
  project: string;
  ref: string;
  commit: string;
  status: EvalStatus;
  event: string;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Attributes the evaluation produced, of which `attrErrors` failed to evaluate. */
  jobCount: number;
  attrErrors: number;
  /** Jobs whose outputs were already in a cache. */
  cachedJobs: number;
  /** The builds the eval planned, by status. */
  counts: BuildCounts;
}

export interface JobSummary {
  attr: string;
  drvPath: string | null;
  /** The evaluation error of the attribute. */
  error: string | null;
  /** Status of its build; null when nothing had to be built (cached) or it did not evaluate. */
  build: BuildStatus | null;
}

export interface BuildSummary {
  drvPath: string;
  name: string;
  system: string;
  status: BuildStatus;
  node: string | null;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  seconds: number | null;
  error: string | null;
  /** For dep-failed: the failed derivation at the root. */
  rootCause: { drvPath: string; name: string } | null;
}

export interface EvalDetail extends EvalSummary {
  jobs: JobSummary[];
  builds: BuildSummary[];
}

export interface BuildDetail extends BuildSummary {
  workflowId: string | null;
  /** The newest eval that includes the build and is still the latest of its ref: where `rebuild` goes. */
  latest: { evalId: string; project: string; ref: string } | null;
}

export interface BuildLog {
  drvPath: string;
  name: string;
  status: BuildStatus;
  /** The last 64 KB of the log; null when none was recorded. */
  tail: string | null;
  updatedAt: string | null;
}

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

const STATUSES: readonly BuildStatus[] = ['pending', 'building', 'uploading', 'succeeded', 'failed', 'dep-failed', 'cancelled', 'timed-out'];
const NIX_HASH = /^[0-9a-df-np-sv-z]{32}$/;

/** The hash part of a build given as a `.drv` path, its hash part, or its workflow id `build/<hash>`; undefined if none of these. */
export function buildHashPart(key: string): string | undefined {
  const base = key.startsWith('build/') ? key.slice('build/'.length) : key.slice(key.lastIndexOf('/') + 1);
  const hash = base.slice(0, 32);
  if (!NIX_HASH.test(hash)) return undefined;
  return base.length === 32 || base[32] === '-' ? hash : undefined;
}

const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString());

const COUNTS_SQL = `SELECT count(*)::int AS total, ${STATUSES.map((s) => `count(*) FILTER (WHERE b.status = '${s}')::int AS "${s}"`).join(', ')}
  FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id WHERE eb.eval_id = ev.id`;

const EVAL_SELECT = `SELECT ev.id, p.name AS project, ev.ref, ev.commit_sha, ev.status, ev.event, ev.error,
         ev.created_at, ev.started_at, ev.finished_at, ev.cached_jobs,
         (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id) AS job_count,
         (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id AND a.error IS NOT NULL) AS attr_errors,
         (SELECT row_to_json(c) FROM (${COUNTS_SQL}) c) AS counts
    FROM evaluations ev JOIN projects p ON p.id = ev.project_id`;

interface EvalRow {
  id: string;
  project: string;
  ref: string;
  commit_sha: string;
  status: EvalStatus;
  event: string;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  job_count: number;
  attr_errors: number;
  cached_jobs: number;
  counts: BuildCounts;
}

function toEvalSummary(row: EvalRow): EvalSummary {
  return {
    id: String(row.id),
    project: row.project,
    ref: row.ref,
    commit: row.commit_sha,
    status: row.status,
    event: row.event,
    error: row.error,
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    jobCount: row.job_count,
    attrErrors: row.attr_errors,
    cachedJobs: row.cached_jobs,
    counts: row.counts,
  };
}

export interface EvalFilter {
  limit: number;
  project?: string | undefined;
  ref?: string | undefined;
  commit?: string | undefined;
}

/** Newest evals first, optionally of one project, ref and commit. */
export async function listEvals(pool: Pool, filter: EvalFilter): Promise<EvalSummary[]> {
  const { rows } = await pool.query<EvalRow>(
    `${EVAL_SELECT}
      WHERE ($1::text IS NULL OR p.name = $1) AND ($2::text IS NULL OR ev.ref = $2) AND ($3::text IS NULL OR ev.commit_sha = $3)
      ORDER BY ev.created_at DESC, ev.id DESC
      LIMIT $4`,
    [filter.project ?? null, filter.ref ?? null, filter.commit ?? null, filter.limit],
  );
  return rows.map(toEvalSummary);
}

/** One eval with its jobs and builds; undefined if there is no such eval. */
export async function readEval(pool: Pool, evalId: string): Promise<EvalDetail | undefined> {
  if (!/^\d+$/.test(evalId)) return undefined;
  const { rows } = await pool.query<EvalRow>(
    `${EVAL_SELECT}
      WHERE ev.id = $1`,
    [evalId],
  );
  if (!rows[0]) return undefined;
  const jobs = await pool.query<{ attr: string; drv_path: string | null; error: string | null; build: BuildStatus | null }>(
    `SELECT a.attr, a.drv_path, a.error, CASE WHEN eb.build_id IS NULL THEN NULL ELSE b.status END AS build
       FROM eval_attrs a
       LEFT JOIN build_jobs b ON b.drv_path = a.drv_path
       LEFT JOIN evaluation_builds eb ON eb.eval_id = a.eval_id AND eb.build_id = b.id
      WHERE a.eval_id = $1
      ORDER BY a.attr`,
    [evalId],
  );
  const builds = await readBuilds(pool, 'eb.eval_id = $1', [evalId], 'JOIN evaluation_builds eb ON eb.build_id = b.id');
  return {
    ...toEvalSummary(rows[0]),
    jobs: jobs.rows.map((j) => ({ attr: j.attr, drvPath: j.drv_path, error: j.error, build: j.build })),
    builds: builds.map(({ row }) => row),
  };
}

async function readBuilds(
  pool: Pool,
  where: string,
  params: unknown[],
  join = '',
): Promise<Array<{ id: string; workflowId: string | null; row: BuildSummary }>> {
  const { rows } = await pool.query<{
    id: string;
    drv_path: string;
    name: string;
    system: string;
    status: BuildStatus;
    node: string | null;
    attempts: number;
    started_at: Date | null;
    finished_at: Date | null;
    seconds: number | null;
    error: string | null;
    workflow_id: string | null;
    root_drv: string | null;
    root_name: string | null;
  }>(
    `SELECT b.id, b.drv_path, d.name, d.system, b.status, b.node, b.attempts, b.started_at, b.finished_at, b.error,
            b.workflow_id, extract(epoch FROM b.finished_at - b.started_at)::float8 AS seconds,
            b.dep_failed_drv_path AS root_drv, r.name AS root_name
       FROM build_jobs b ${join}
       JOIN derivations d ON d.drv_path = b.drv_path
       LEFT JOIN derivations r ON r.drv_path = b.dep_failed_drv_path
      WHERE ${where}
      ORDER BY b.id`,
    params,
  );
  return rows.map((row) => ({
    id: String(row.id),
    workflowId: row.workflow_id,
    row: {
      drvPath: row.drv_path,
      name: row.name,
      system: row.system,
      status: row.status,
      node: row.node,
      attempts: row.attempts,
      startedAt: iso(row.started_at),
      finishedAt: iso(row.finished_at),
      seconds: row.seconds,
      error: row.error,
      rootCause: row.root_drv ? { drvPath: row.root_drv, name: row.root_name ?? row.root_drv } : null,
    },
  }));
}

/** A build by the hash part of its derivation, with where a rebuild would go. */
export async function readBuild(pool: Pool, hashPart: string): Promise<BuildDetail | undefined> {
  const [found] = await readBuilds(pool, `b.drv_path LIKE '%/' || $1 || '-%'`, [hashPart]);
  if (!found) return undefined;
  const latest = await pool.query<{ eval_id: string; project: string; ref: string }>(
    `SELECT ev.id AS eval_id, p.name AS project, ev.ref
       FROM evaluation_builds eb JOIN evaluations ev ON ev.id = eb.eval_id JOIN projects p ON p.id = ev.project_id
      WHERE eb.build_id = $1
        AND ev.id = (SELECT e2.id FROM evaluations e2
                      WHERE e2.project_id = ev.project_id AND e2.ref = ev.ref AND e2.status <> 'skipped'
                      ORDER BY e2.created_at DESC, e2.id DESC LIMIT 1)
      ORDER BY ev.created_at DESC, ev.id DESC LIMIT 1`,
    [found.id],
  );
  const row = latest.rows[0];
  return {
    ...found.row,
    workflowId: found.workflowId,
    latest: row ? { evalId: String(row.eval_id), project: row.project, ref: row.ref } : null,
  };
}

/** The live log tail of a build by the hash part of its derivation. */
export async function readBuildLog(pool: Pool, hashPart: string): Promise<BuildLog | undefined> {
  const { rows } = await pool.query<{ drv_path: string; name: string; status: BuildStatus; tail: string | null; updated_at: Date | null }>(
    `SELECT b.drv_path, d.name, b.status, t.tail, t.updated_at
       FROM build_jobs b JOIN derivations d ON d.drv_path = b.drv_path
       LEFT JOIN build_log_tails t ON t.build_id = b.id
      WHERE b.drv_path LIKE '%/' || $1 || '-%'`,
    [hashPart],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { drvPath: row.drv_path, name: row.name, status: row.status, tail: row.tail, updatedAt: iso(row.updated_at) };
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
