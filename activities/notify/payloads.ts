/** The data of each notification event, read from PostgreSQL (the `data` field of the JSON body). */
import type { Pool } from 'pg';
import { countProgress } from '../../queries/progress.ts';

export interface EvalSubject {
  project: string;
  data: Record<string, unknown>;
}

/** The eval as notifications describe it, with its builds' counts; undefined when it does not exist. */
export async function evalFinishedData(pool: Pool, evalId: string, publicUrl: string): Promise<EvalSubject | undefined> {
  const { rows } = await pool.query<{ project: string; ref: string; commit_sha: string | null; status: string; error: string | null }>(
    `SELECT p.name AS project, e.ref, e.commit_sha, e.status, e.error FROM evaluations e JOIN projects p ON p.id = e.project_id WHERE e.id = $1`,
    [evalId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const progress = await countProgress(pool, evalId);
  return {
    project: row.project,
    data: {
      eval: { id: evalId, ref: row.ref, commit: row.commit_sha, status: row.status, error: row.error, url: `${publicUrl}/ci/evals/${evalId}` },
      builds: {
        total: progress.total,
        succeeded: progress.succeeded,
        cached: progress.cached,
        failed: progress.failed,
        timedOut: progress.timedOut,
        depFailed: progress.depFailed,
        cancelled: progress.cancelled,
      },
    },
  };
}

/** The builds of an eval that failed themselves (failed or timed out; dep-failed ones name their cause instead). */
export async function failedBuilds(pool: Pool, evalId: string, publicUrl: string): Promise<Array<{ buildId: string; data: Record<string, unknown> }>> {
  const { rows } = await pool.query<{ id: string; drv_path: string; status: string; error: string | null; exit_code: number | null; attrs: string[] }>(
    `SELECT b.id::text, b.drv_path, b.status, b.error, b.exit_code,
            ARRAY(SELECT a.attr FROM eval_attrs a WHERE a.eval_id = eb.eval_id AND a.drv_path = b.drv_path ORDER BY a.attr) AS attrs
       FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id
      WHERE eb.eval_id = $1 AND b.status IN ('failed', 'timed-out', 'failed-with-output') ORDER BY b.id`,
    [evalId],
  );
  return rows.map((row) => ({
    buildId: row.id,
    data: {
      build: { id: row.id, drv: row.drv_path, attrs: row.attrs, status: row.status, error: row.error, exitCode: row.exit_code, url: `${publicUrl}/ci/builds/${row.id}` },
    },
  }));
}

/** A finished deployment as notifications describe it; undefined when it does not exist. */
export async function deploymentFinishedData(pool: Pool, deploymentId: string, publicUrl: string): Promise<EvalSubject | undefined> {
  const { rows } = await pool.query<{
    project: string; environment: string; status: string; store_path: string; reason: string | null; approved_by: string | null;
    eval_id: string | null; ref: string | null; commit_sha: string | null;
  }>(
    `SELECT p.name AS project, d.environment, d.status, d.store_path, d.reason, d.approved_by, d.eval_id::text, e.ref, e.commit_sha
       FROM deployments d JOIN projects p ON p.id = d.project_id LEFT JOIN evaluations e ON e.id = d.eval_id WHERE d.id = $1`,
    [deploymentId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    project: row.project,
    data: {
      deployment: {
        id: deploymentId, environment: row.environment, status: row.status, storePath: row.store_path, reason: row.reason, approvedBy: row.approved_by,
        url: `${publicUrl}/ci/projects/${row.project}`,
      },
      eval: row.eval_id === null ? null : { id: row.eval_id, ref: row.ref, commit: row.commit_sha, url: `${publicUrl}/ci/evals/${row.eval_id}` },
    },
  };
}
