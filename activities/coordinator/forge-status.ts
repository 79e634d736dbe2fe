/**
 * Commit statuses on the forge, computed from what PostgreSQL says about an eval. The last
 * status sent per eval and context is remembered, so a repeated report sends nothing and a
 * commit stays below GitHub's 1000 statuses per sha and context (near the limit only changes
 * of state go out). A forge outage or rate limit throws a retryable failure: Temporal retries
 * the activity (after retry-after when given), and the retry sends the state as it is then.
 */
import type { Pool } from 'pg';
import { ForgeNotConfiguredError } from '../../forges/errors.ts';
import { asActivityFailure } from '../../forges/retry.ts';
import { describeStatuses, type DesiredStatus } from '../../forges/statuses.ts';
import type { Forges, RepositoryRef } from '../../forges/types.ts';
import type { Logger } from '../../lib/log.ts';
import type { EvalStatus } from '../../workflows/types.ts';
import { countProgress } from '../../queries/progress.ts';

/** Sends an eval's commit statuses; local projects have no forge and get none. */
export type ForgeStatusReporter = (evalId: string) => Promise<void>;

export interface ForgeStatusDeps {
  pool: Pool;
  forges?: Forges;
  /** Base of the dashboard links (`api.public-url`). */
  publicUrl?: string;
  log?: Logger;
}

/** After this many statuses for a sha and context, progress-only updates stop. */
const PROGRESS_BUDGET = 900;
/** GitHub refuses more than 1000; stay clear of it. */
const HARD_LIMIT = 990;

interface EvalRow {
  status: EvalStatus;
  error: string | null;
  commit_sha: string;
  copied_from: string | null;
  forge: string;
  owner: string;
  name: string;
  repository_id: string;
  forge_installation_id: string | null;
  jobs: string;
  attr_errors: string;
  superseded_by: string | null;
}

export function createForgeStatusReporter(deps: ForgeStatusDeps): ForgeStatusReporter {
  const report = async (evalId: string, followCopies: boolean): Promise<void> => {
    const { rows } = await deps.pool.query<EvalRow>(
      `SELECT e.status, e.error, e.commit_sha, e.copied_from, r.forge, r.owner, r.name, r.id AS repository_id, r.forge_installation_id,
              (SELECT count(*) FROM eval_attrs a WHERE a.eval_id = e.id AND a.error IS NULL) AS jobs,
              (SELECT count(*) FROM eval_attrs a WHERE a.eval_id = e.id AND a.error IS NOT NULL) AS attr_errors,
              (SELECT n.commit_sha FROM evaluations n WHERE n.project_id = e.project_id AND n.ref = e.ref AND n.id > e.id
                ORDER BY n.id DESC LIMIT 1) AS superseded_by
         FROM evaluations e JOIN projects p ON p.id = e.project_id JOIN repositories r ON r.id = p.repository_id
        WHERE e.id = $1`,
      [evalId],
    );
    const row = rows[0];
    if (!row || row.forge === 'local') return;
    const forge = deps.forges?.[row.forge as 'github' | 'gitea'];
    if (!forge) {
      // Nothing can deliver these statuses until the forge is configured; retrying would stall the eval.
      deps.log?.warn({ evalId, forge: row.forge }, `commit statuses not sent: ${new ForgeNotConfiguredError(row.forge).message}`);
      return;
    }
    const desired = describeStatuses({
      status: row.status,
      error: row.error,
      jobs: Number(row.jobs),
      attrErrors: Number(row.attr_errors),
      progress: await countProgress(deps.pool, evalId),
      ...(row.superseded_by ? { supersededBy: row.superseded_by } : {}),
      ...(row.copied_from ? { copiedFrom: String(row.copied_from) } : {}),
    });
    const repo: RepositoryRef = {
      owner: row.owner,
      name: row.name,
      installationId: row.forge_installation_id === null ? null : Number(row.forge_installation_id),
    };
    const targetUrl = `${(deps.publicUrl ?? 'http://localhost:8080').replace(/\/+$/, '')}/ci/evals/${evalId}`;
    for (const status of desired) {
      if (!(await worthSending(deps.pool, evalId, row, status))) continue;
      try {
        await forge.setStatus(repo, row.commit_sha, { ...status, targetUrl });
      } catch (error) {
        const failure = asActivityFailure(error);
        if (failure) throw failure;
        // A permanent refusal (no access, commit unknown): retrying cannot help.
        deps.log?.warn({ err: error, evalId, context: status.context }, 'the forge refused a commit status');
        continue;
      }
      await deps.pool.query(
        `INSERT INTO forge_statuses (eval_id, context, state, description, sent) VALUES ($1, $2, $3, $4, 1)
         ON CONFLICT (eval_id, context) DO UPDATE
           SET state = excluded.state, description = excluded.description, sent = forge_statuses.sent + 1, updated_at = now()`,
        [evalId, status.context, status.state, status.description],
      );
    }
    if (followCopies) {
      // Skipped evals reuse this eval's builds: their statuses follow this one's progress.
      const copies = await deps.pool.query<{ id: string }>('SELECT id FROM evaluations WHERE copied_from = $1', [evalId]);
      for (const copy of copies.rows) await report(String(copy.id), false);
    }
  };
  return (evalId) => report(evalId, true);
}

/** False when the same status was sent last time, or when the commit's status budget is spent. */
async function worthSending(pool: Pool, evalId: string, row: EvalRow, status: DesiredStatus): Promise<boolean> {
  const previous = await pool.query<{ state: string; description: string }>(
    'SELECT state, description FROM forge_statuses WHERE eval_id = $1 AND context = $2',
    [evalId, status.context],
  );
  const last = previous.rows[0];
  if (last && last.state === status.state && last.description === status.description) return false;
  const spent = await pool.query<{ total: string }>(
    `SELECT coalesce(sum(s.sent), 0) AS total FROM forge_statuses s
       JOIN evaluations e ON e.id = s.eval_id JOIN projects p ON p.id = e.project_id
      WHERE p.repository_id = $1 AND e.commit_sha = $2 AND s.context = $3`,
    [row.repository_id, row.commit_sha, status.context],
  );
  const total = Number(spent.rows[0]!.total);
  if (total >= HARD_LIMIT) return false;
  return !(total >= PROGRESS_BUDGET && last?.state === status.state);
}
