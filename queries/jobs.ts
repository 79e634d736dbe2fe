/**
 * The jobs of an eval: each attribute with its derivation, evaluation error, outputs and the
 * build that realises it. One query serves the dashboard's jobs table, its live updates, the jobs
 * of `/api/evals/<id>` and `harmonia-ci status`, and the summary `harmonia-ci run` prints.
 */
import type { Pool } from 'pg';
import type { BuildStatus } from '../workflows/types.ts';
import { BUILD_COLUMNS, BUILD_ROOT_JOIN, toBuildRow, type BuildColumns, type BuildRow } from './builds.ts';

/** The build of a job's derivation, shared with every other eval that needs it. */
export interface JobBuild extends BuildRow {
  id: string;
  /** Database time of the last change, as PostgreSQL text (microseconds kept). */
  updatedAt: string;
}

export interface EvalJob {
  attr: string;
  drvPath: string | null;
  /** Why the attribute did not evaluate; null when it did. */
  evalError: string | null;
  /** The eval had to build it; false when its outputs were already in a cache. */
  planned: boolean;
  /** The derivation's build, when harmonia-ci ever scheduled one (also for a cached job built for another eval). */
  build: JobBuild | null;
  /** Output name → store path, as far as known. */
  outputs: Record<string, string>;
}

/** A job as the operator views list it: its build's status only. */
export interface JobSummary {
  attr: string;
  drvPath: string | null;
  /** The evaluation error of the attribute. */
  error: string | null;
  /** Status of its build; null when nothing had to be built (cached) or it did not evaluate. */
  build: BuildStatus | null;
  /** The job in one word, as `harmonia-ci status` shows it: its build's status, `cached` or `eval-error`. */
  status: JobState;
  /** Output name → store path, as far as known (a failed build has none). */
  outputs: Record<string, string>;
}

/** The operator view of a job. */
export function toJobSummary(job: EvalJob): JobSummary {
  return {
    attr: job.attr,
    drvPath: job.drvPath,
    error: job.evalError,
    build: job.planned && job.build ? job.build.status : null,
    status: jobState(job),
    outputs: job.outputs,
  };
}

/** A job's state in one word: its build status when planned, else `cached` or `eval-error`. */
export type JobState = BuildStatus | 'cached' | 'eval-error';

/** What the dashboard shows for a job. */
export function jobState(job: EvalJob): JobState {
  if (job.evalError !== null) return 'eval-error';
  if (!job.planned || !job.build) return 'cached';
  return job.build.status;
}

/** The build columns are null when the derivation never had a build. */
type JobRow = { [K in keyof BuildColumns]: BuildColumns[K] | null } & {
  attr: string;
  drv_path: string | null;
  error: string | null;
  planned: boolean;
  build_id: string | null;
  updated_at: string | null;
  outputs: Record<string, string> | null;
};

function toJob(row: JobRow): EvalJob {
  const build: JobBuild | null =
    row.build_id === null ? null : { id: String(row.build_id), ...toBuildRow(row as BuildColumns), updatedAt: row.updated_at! };
  return { attr: row.attr, drvPath: row.drv_path, evalError: row.error, planned: row.planned, build, outputs: row.outputs ?? {} };
}

export interface ReadJobsOptions {
  /**
   * Only jobs whose build changed after this database time (PostgreSQL timestamptz text), less
   * two seconds: a row is stamped with its transaction's start time and may commit after a later
   * one, so the window overlaps and callers drop the repeats.
   */
  changedSince?: string;
}

/** The jobs of an eval ordered by attribute; with `changedSince`, about only those whose build changed since. */
export async function readEvalJobs(pool: Pool, evalId: string, options: ReadJobsOptions = {}): Promise<EvalJob[]> {
  const { rows } = await pool.query<JobRow>(
    `SELECT a.attr, a.drv_path, a.error, (eb.build_id IS NOT NULL) AS planned,
            b.id AS build_id, ${BUILD_COLUMNS}, b.updated_at::text AS updated_at,
            (SELECT json_object_agg(o.output_name, o.out_path) FROM derivation_outputs o
              WHERE o.drv_path = a.drv_path AND o.out_path IS NOT NULL) AS outputs
       FROM eval_attrs a
       LEFT JOIN build_jobs b ON b.drv_path = a.drv_path
       LEFT JOIN evaluation_builds eb ON eb.eval_id = a.eval_id AND eb.build_id = b.id
       ${BUILD_ROOT_JOIN}
      WHERE a.eval_id = $1 AND ($2::timestamptz IS NULL OR b.updated_at > $2::timestamptz - interval '2 seconds')
      ORDER BY a.attr`,
    [evalId, options.changedSince ?? null],
  );
  return rows.map(toJob);
}
