/** Coordinator activities about evals: creating them from pushes, their status, the latest of a ref. */
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { STATUS_MODES } from '../../config/repo-schema.ts';
import { gitSourceUrl } from '../../forges/git-source.ts';
import { createNamedLocalProject } from '../../forges/projects.ts';
import type { EvalSettings, EvalStatus, JobsetSource } from '../../workflows/types.ts';
import type { CoordinatorActivities, StartEvalRequest, StartedEval } from '../types.ts';

type EvalActivities = Pick<CoordinatorActivities, 'createEval' | 'setEvalStatus' | 'latestEval'>;

const FORGE_EVENTS = new Set(['push', 'pull_request', 'merge_group', 'poll']);

export function createEvalActivities({ pool, defaults }: { pool: Pool; defaults: EvalSettings }): EvalActivities {
  return {
    createEval: (request) => createEval(pool, defaults, request),

    async setEvalStatus(evalId: string, status: EvalStatus, error?: string) {
      await pool.query(
        `UPDATE evaluations
            SET status = $2, error = $3,
                started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
                finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled', 'skipped') THEN now() ELSE NULL END
          WHERE id = $1`,
        [evalId, status, status === 'failed' || status === 'cancelled' ? (error ?? null) : null],
      );
      // A failed evaluation keeps no partial attribute results.
      if (status === 'failed') await pool.query('DELETE FROM eval_attrs WHERE eval_id = $1', [evalId]);
    },

    async latestEval(projectName, ref) {
      const { rows } = await pool.query<{ id: string; commit_sha: string; clone_url: string; forge: string }>(
        `SELECT ev.id, ev.commit_sha, r.clone_url, r.forge
           FROM evaluations ev JOIN projects p ON p.id = ev.project_id JOIN repositories r ON r.id = p.repository_id
          WHERE p.name = $1 AND ev.ref = $2 AND ev.status <> 'skipped'
          ORDER BY ev.created_at DESC, ev.id DESC LIMIT 1`,
        [projectName, ref],
      );
      const row = rows[0];
      if (!row) return undefined;
      const source: JobsetSource =
        row.forge === 'local'
          ? { kind: 'path', url: row.clone_url }
          : { kind: 'git', url: gitSourceUrl(row.clone_url, ref), rev: row.commit_sha };
      return { evalId: String(row.id), sha: row.commit_sha, source };
    },
  };
}

async function createEval(pool: Pool, defaults: EvalSettings, request: StartEvalRequest): Promise<StartedEval> {
  const { push } = request;
  const findProject = (): Promise<{ id: string; settings: Partial<EvalSettings> } | undefined> =>
    pool.query<{ id: string; settings: Partial<EvalSettings> }>('SELECT id, settings FROM projects WHERE name = $1', [request.projectName]).then((r) => r.rows[0]);
  let row = await findProject();
  // A local directory or file (`harmonia-ci eval <dir> --project NAME`) needs no forge: its
  // project is made on first use. Pushes from forges name git sources, never paths.
  if (!row && push.source.kind === 'path') {
    await createNamedLocalProject(pool, request.projectName, push.source.url);
    row = await findProject();
  }
  if (!row) {
    throw ApplicationFailure.nonRetryable(
      `project ${request.projectName} does not exist; create it with \`harmonia-ci projects enable\`, or evaluate a local directory with \`harmonia-ci eval <dir> --project NAME\``,
      'UnknownProject',
    );
  }
  const settings: EvalSettings = { ...defaults, ...pickSettings(row.settings), ...(push.untrusted ? { restricted: true } : {}) };
  const event = FORGE_EVENTS.has(push.event) ? push.event : 'manual';

  const inserted = await pool.query<{ id: string }>(
    `INSERT INTO evaluations (project_id, commit_sha, ref, tree_hash, event)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (project_id, commit_sha, ref) DO NOTHING
     RETURNING id`,
    [row.id, push.sha, request.ref, push.treeHash ?? null, event],
  );
  let evalId = inserted.rows[0] ? String(inserted.rows[0].id) : undefined;
  if (!evalId) {
    const existing = await pool.query<{ id: string }>(
      'SELECT id FROM evaluations WHERE project_id = $1 AND commit_sha = $2 AND ref = $3',
      [row.id, push.sha, request.ref],
    );
    evalId = String(existing.rows[0]!.id);
    if (!request.fresh) return { evalId, settings, existed: true };
    await pool.query('DELETE FROM eval_attrs WHERE eval_id = $1', [evalId]);
    await pool.query('DELETE FROM evaluation_builds WHERE eval_id = $1', [evalId]);
    await pool.query(
      `UPDATE evaluations SET status = 'queued', error = NULL, copied_from = NULL, cached_jobs = 0,
              started_at = NULL, finished_at = NULL, event = 'manual' WHERE id = $1`,
      [evalId],
    );
    return { evalId, settings };
  }

  if (push.treeHash) {
    const twin = await pool.query<{ id: string }>(
      `SELECT id FROM evaluations WHERE project_id = $1 AND tree_hash = $2 AND status = 'succeeded' AND id <> $3
        ORDER BY created_at DESC LIMIT 1`,
      [row.id, push.treeHash, evalId],
    );
    const twinId = twin.rows[0] ? String(twin.rows[0].id) : undefined;
    if (twinId) {
      await copyResults(pool, twinId, evalId);
      return { evalId, settings, skippedBecauseOf: twinId };
    }
  }
  return { evalId, settings };
}

/** A skipped eval carries the results of its twin, so reports and the dashboard show them. */
async function copyResults(pool: Pool, fromEval: string, toEval: string): Promise<void> {
  await pool.query(
    'INSERT INTO eval_attrs (eval_id, attr, drv_path, error) SELECT $2, attr, drv_path, error FROM eval_attrs WHERE eval_id = $1',
    [fromEval, toEval],
  );
  await pool.query(
    `INSERT INTO evaluation_builds (eval_id, build_id, subscribed_at)
     SELECT $2, build_id, subscribed_at FROM evaluation_builds WHERE eval_id = $1`,
    [fromEval, toEval],
  );
  await pool.query(
    `UPDATE evaluations SET status = 'skipped', copied_from = $1, finished_at = now(),
            cached_jobs = (SELECT cached_jobs FROM evaluations WHERE id = $1),
            statuses = (SELECT statuses FROM evaluations WHERE id = $1)
      WHERE id = $2`,
    [fromEval, toEval],
  );
}

function pickSettings(stored: Partial<EvalSettings> | null): Partial<EvalSettings> {
  const out: Partial<EvalSettings> = {};
  if (stored && Array.isArray(stored.attrs)) out.attrs = stored.attrs;
  if (stored && typeof stored.allowIfd === 'boolean') out.allowIfd = stored.allowIfd;
  if (stored && typeof stored.evalTimeoutMs === 'number') out.evalTimeoutMs = stored.evalTimeoutMs;
  if (stored && (STATUS_MODES as readonly unknown[]).includes(stored.statuses)) out.statuses = stored.statuses!;
  return out;
}
