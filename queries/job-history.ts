/**
 * One attribute of a project across its evals, newest first: what the job page
 * `/ci/projects/<owner>/<repo>/jobs/<attr>` and its JSON twin show, and since when it fails.
 */
import type { Pool } from 'pg';
import { FAILING_STATES, type JobState } from './jobs.ts';

/** Evals a job history shows at most. */
export const JOB_HISTORY_LIMIT = 50;

export interface JobHistoryEntry {
  evalId: string;
  commit: string;
  ref: string;
  evalCreatedAt: string;
  state: JobState;
  drvPath: string | null;
  /** Seconds the build took, when it was built for this eval. */
  seconds: number | null;
  evalError: string | null;
}

export interface JobHistory {
  project: string;
  attr: string;
  entries: JobHistoryEntry[];
  /** The oldest eval of the failing run that reaches the newest entry; null when the newest did not fail. */
  failingSince: JobHistoryEntry | null;
}

interface Row {
  eval_id: string;
  commit_sha: string;
  ref: string;
  created_at: Date;
  drv_path: string | null;
  error: string | null;
  planned: boolean;
  status: JobState | null;
  seconds: number | null;
}

/** The history of `attr` in `project`, or undefined when no eval of the project has that attribute. */
export async function readJobHistory(pool: Pool, project: string, attr: string, limit = JOB_HISTORY_LIMIT): Promise<JobHistory | undefined> {
  // PostgreSQL text holds no NUL: such a name is in no eval.
  if (attr.includes('\0') || project.includes('\0')) return undefined;
  const { rows } = await pool.query<Row>(
    `SELECT e.id::text AS eval_id, e.commit_sha, e.ref, e.created_at, a.drv_path, a.error,
            (eb.build_id IS NOT NULL) AS planned, b.status,
            extract(epoch FROM b.finished_at - b.started_at)::float8 AS seconds
       FROM eval_attrs a
       JOIN evaluations e ON e.id = a.eval_id
       JOIN projects p ON p.id = e.project_id
       LEFT JOIN build_jobs b ON b.drv_path = a.drv_path
       LEFT JOIN evaluation_builds eb ON eb.eval_id = a.eval_id AND eb.build_id = b.id
      WHERE p.name = $1 AND a.attr = $2
      ORDER BY e.id DESC
      LIMIT $3`,
    [project, attr, limit],
  );
  if (rows.length === 0) return undefined;
  const entries = rows.map((row): JobHistoryEntry => {
    const state: JobState = row.error !== null ? 'eval-error' : !row.planned || row.status === null ? 'cached' : row.status;
    return {
      evalId: row.eval_id,
      commit: row.commit_sha,
      ref: row.ref,
      evalCreatedAt: row.created_at.toISOString(),
      state,
      drvPath: row.drv_path,
      seconds: row.planned && row.seconds !== null ? Math.round(row.seconds * 10) / 10 : null,
      evalError: row.error,
    };
  });
  let failingSince: JobHistoryEntry | null = null;
  for (const entry of entries) {
    if (!FAILING_STATES.includes(entry.state)) break;
    failingSince = entry;
  }
  return { project, attr, entries, failingSince };
}
