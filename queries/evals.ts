/**
 * Evals: the eval row every view shares, and evals as operators read them: recent evals with
 * their build counts, and one eval with its jobs and builds. Shared by the JSON routes (api/routes/ops.ts) and the command line, which queries
 * PostgreSQL directly when it has a database URL and goes through the API otherwise.
 */
import type { Pool } from 'pg';
import type { BuildStatus, EvalStatus } from '../workflows/types.ts';
import { listEvalBuilds, type BuildSummary } from './builds.ts';
import { readEvalJobs, toJobSummary, type JobSummary } from './jobs.ts';
import { iso } from './time.ts';

export type BuildCounts = Record<BuildStatus, number> & { total: number };

/** An eval as every view shows it: the commit of a ref it evaluates, and how its evaluation went. */
export interface EvalRow {
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
}

/** The columns `toEvalRow` reads, from `evaluations ev JOIN projects p`. */
export const EVAL_COLUMNS = 'ev.id, p.name AS project, ev.ref, ev.commit_sha, ev.status, ev.event, ev.error, ev.created_at, ev.started_at, ev.finished_at';

export interface EvalColumns {
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
}

/** An eval row from `EVAL_COLUMNS`. */
export function toEvalRow(row: EvalColumns): EvalRow {
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
  };
}

export interface EvalSummary extends EvalRow {
  /** Attributes the evaluation produced, of which `attrErrors` failed to evaluate. */
  jobCount: number;
  attrErrors: number;
  /** Jobs whose outputs were already in a cache. */
  cachedJobs: number;
  /** The builds the eval planned, by status. */
  counts: BuildCounts;
}

export interface EvalDetail extends EvalSummary {
  jobs: JobSummary[];
  builds: BuildSummary[];
}

const STATUSES: readonly BuildStatus[] = ['pending', 'building', 'uploading', 'succeeded', 'failed', 'dep-failed', 'cancelled', 'timed-out', 'failed-with-output'];

const COUNTS_SQL = `SELECT count(*)::int AS total, ${STATUSES.map((s) => `count(*) FILTER (WHERE b.status = '${s}')::int AS "${s}"`).join(', ')}
  FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id WHERE eb.eval_id = ev.id`;

const EVAL_SELECT = `SELECT ${EVAL_COLUMNS}, ev.cached_jobs,
         (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id) AS job_count,
         (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id AND a.error IS NOT NULL) AS attr_errors,
         (SELECT row_to_json(c) FROM (${COUNTS_SQL}) c) AS counts
    FROM evaluations ev JOIN projects p ON p.id = ev.project_id`;

interface SummaryColumns extends EvalColumns {
  job_count: number;
  attr_errors: number;
  cached_jobs: number;
  counts: BuildCounts;
}

function toEvalSummary(row: SummaryColumns): EvalSummary {
  return {
    ...toEvalRow(row),
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
  /** Projects to leave out: the private ones the reader may not see. */
  hidden?: readonly string[] | undefined;
}

/** Newest evals first, optionally of one project, ref and commit. */
export async function listEvals(pool: Pool, filter: EvalFilter): Promise<EvalSummary[]> {
  const { rows } = await pool.query<SummaryColumns>(
    `${EVAL_SELECT}
      WHERE ($1::text IS NULL OR p.name = $1) AND ($2::text IS NULL OR ev.ref = $2) AND ($3::text IS NULL OR ev.commit_sha = $3)
        AND NOT (p.name = ANY($5::text[]))
      ORDER BY ev.created_at DESC, ev.id DESC
      LIMIT $4`,
    [filter.project ?? null, filter.ref ?? null, filter.commit ?? null, filter.limit, filter.hidden ?? []],
  );
  return rows.map(toEvalSummary);
}

/** One eval with its jobs and builds; undefined if there is no such eval. */
export async function readEval(pool: Pool, evalId: string): Promise<EvalDetail | undefined> {
  if (!/^\d+$/.test(evalId)) return undefined;
  const { rows } = await pool.query<SummaryColumns>(
    `${EVAL_SELECT}
      WHERE ev.id = $1`,
    [evalId],
  );
  if (!rows[0]) return undefined;
  const jobs = await readEvalJobs(pool, evalId);
  const builds = await listEvalBuilds(pool, evalId);
  return {
    ...toEvalSummary(rows[0]),
    jobs: jobs.map(toJobSummary),
    builds,
  };
}

/** Where an eval stands and why it failed; undefined if there is no such eval. */
export async function readEvalStatus(pool: Pool, evalId: string): Promise<{ status: EvalStatus; error: string | null } | undefined> {
  const { rows } = await pool.query<{ status: EvalStatus; error: string | null }>('SELECT status, error FROM evaluations WHERE id = $1', [evalId]);
  return rows[0];
}

/** The eval of a project's commit, if one was created. */
export async function findEvalOfCommit(pool: Pool, projectName: string, sha: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ id: string }>(
    'SELECT e.id FROM evaluations e JOIN projects p ON p.id = e.project_id WHERE p.name = $1 AND e.commit_sha = $2',
    [projectName, sha],
  );
  return rows[0] ? String(rows[0].id) : undefined;
}
