/**
 * The jobs of an eval: each attribute with its derivation, evaluation error, outputs and the
 * build that realises it. One query serves the dashboard's jobs table, its live updates, the jobs
 * of `/api/evals/<id>` and `harmonia-ci status`, and the summary `harmonia-ci run` prints.
 */
import type { Pool } from 'pg';
import type { JobMeta } from '../daemon/eval/types.ts';
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
  /** What the job's `meta` says (description, maintainers, license, limits); null when nothing. */
  meta: JobMeta | null;
  /** For an aggregate job: its constituents and how each stands; null for an ordinary job. */
  constituents: ConstituentState[] | null;
}

/** One constituent of an aggregate job and its state in the eval. */
export interface ConstituentState {
  /** The constituent's job; null for a derivation that is not a job of the eval. */
  attr: string | null;
  drvPath: string;
  state: JobState;
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
  /** For an aggregate: its constituents with their states. */
  constituents?: ConstituentState[];
  /** For an aggregate that failed through its constituents: which ones, in words. */
  failedConstituents?: string[];
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
    ...(job.constituents ? { constituents: job.constituents } : {}),
    ...(failingConstituents(job).length > 0 ? { failedConstituents: failingConstituents(job) } : {}),
  };
}

/** A job's state in one word: its build status when planned, else `cached` or `eval-error`. */
export type JobState = BuildStatus | 'cached' | 'eval-error';

/** States in which a job counts as a failure (an aggregate fails when a constituent is in one). */
export const FAILING_STATES: readonly JobState[] = ['failed', 'dep-failed', 'timed-out', 'cancelled', 'eval-error', 'failed-with-output'];
const SETTLED_STATES: readonly JobState[] = ['succeeded', 'cached'];

/**
 * What the dashboard shows for a job. An aggregate whose own build succeeded follows its
 * constituents: failed when one of them failed, pending while one is still to be built.
 */
export function jobState(job: EvalJob): JobState {
  const own = ownState(job);
  if (!job.constituents || !SETTLED_STATES.includes(own)) return own;
  if (failingConstituents(job).length > 0) return 'failed';
  return job.constituents.every((c) => SETTLED_STATES.includes(c.state)) ? own : 'pending';
}

function ownState(job: EvalJob): JobState {
  if (job.evalError !== null) return 'eval-error';
  if (!job.planned || !job.build) return 'cached';
  return job.build.status;
}

/** The constituents of an aggregate that failed, each as `attr (state)`. */
export function failingConstituents(job: EvalJob): string[] {
  return (job.constituents ?? []).filter((c) => FAILING_STATES.includes(c.state)).map((c) => `${c.attr ?? c.drvPath} (${c.state})`);
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
  meta: JobMeta | null;
  constituents: Array<{ attr: string | null; drvPath: string; status: BuildStatus | null; planned: boolean; error: string | null }> | null;
};

function toJob(row: JobRow): EvalJob {
  const build: JobBuild | null =
    row.build_id === null ? null : { id: String(row.build_id), ...toBuildRow(row as BuildColumns), updatedAt: row.updated_at! };
  const constituents =
    row.constituents?.map((c): ConstituentState => ({
      attr: c.attr,
      drvPath: c.drvPath,
      state: c.error !== null ? 'eval-error' : c.planned && c.status !== null ? c.status : 'cached',
    })) ?? null;
  return { attr: row.attr, drvPath: row.drv_path, evalError: row.error, planned: row.planned, build, outputs: row.outputs ?? {}, meta: row.meta, constituents };
}

/** Constituents that are aggregates themselves count with their own constituents' results. */
function withNestedAggregates(jobs: EvalJob[]): EvalJob[] {
  const aggregates = new Map(jobs.filter((j) => j.constituents).map((j) => [j.attr, j]));
  const states = new Map<string, JobState>();
  const stateOf = (job: EvalJob, depth: number): JobState => {
    const known = states.get(job.attr);
    if (known) return known;
    // The evaluator refuses cycles; the depth bound only guards against rows written otherwise.
    if (depth < 32) {
      job.constituents = job.constituents!.map((c) => {
        const nested = c.attr === null ? undefined : aggregates.get(c.attr);
        return nested && nested !== job ? { ...c, state: stateOf(nested, depth + 1) } : c;
      });
    }
    const state = jobState(job);
    states.set(job.attr, state);
    return state;
  };
  for (const job of aggregates.values()) stateOf(job, 0);
  return jobs;
}

export interface ReadJobsOptions {
  /**
   * Only jobs whose build changed after this database time (PostgreSQL timestamptz text), less
   * two seconds, and every aggregate (its state follows its constituents'): a row is stamped with its transaction's start time and may commit after a later
   * one, so the window overlaps and callers drop the repeats.
   */
  changedSince?: string;
  /** Only this attribute (and the aggregates, whose states it may change). */
  attr?: string;
}

/** The jobs of an eval ordered by attribute; with `changedSince`, about only those whose build changed since. */
export async function readEvalJobs(pool: Pool, evalId: string, options: ReadJobsOptions = {}): Promise<EvalJob[]> {
  const { rows } = await pool.query<JobRow>(
    `SELECT a.attr, a.drv_path, a.error, (eb.build_id IS NOT NULL) AS planned,
            b.id AS build_id, ${BUILD_COLUMNS}, b.updated_at::text AS updated_at,
            (SELECT json_object_agg(o.output_name, o.out_path) FROM derivation_outputs o
              WHERE o.drv_path = a.drv_path AND o.out_path IS NOT NULL) AS outputs,
            a.meta,
            (SELECT json_agg(json_build_object('attr', c.value->>'attr', 'drvPath', c.value->>'drvPath', 'status', cb.status,
                                               'planned', ceb.build_id IS NOT NULL, 'error', ca.error) ORDER BY c.ordinality)
               FROM jsonb_array_elements(a.constituents) WITH ORDINALITY AS c(value, ordinality)
               LEFT JOIN eval_attrs ca ON ca.eval_id = a.eval_id AND ca.attr = c.value->>'attr'
               LEFT JOIN build_jobs cb ON cb.drv_path = c.value->>'drvPath'
               LEFT JOIN evaluation_builds ceb ON ceb.eval_id = a.eval_id AND ceb.build_id = cb.id) AS constituents
       FROM eval_attrs a
       LEFT JOIN build_jobs b ON b.drv_path = a.drv_path
       LEFT JOIN evaluation_builds eb ON eb.eval_id = a.eval_id AND eb.build_id = b.id
       ${BUILD_ROOT_JOIN}
      WHERE a.eval_id = $1
        AND ($2::timestamptz IS NULL OR b.updated_at > $2::timestamptz - interval '2 seconds' OR a.constituents IS NOT NULL)
        AND ($3::text IS NULL OR a.attr = $3 OR a.constituents IS NOT NULL)
      ORDER BY a.attr`,
    [evalId, options.changedSince ?? null, options.attr ?? null],
  );
  return withNestedAggregates(rows.map(toJob));
}
