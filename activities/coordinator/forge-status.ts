/**
 * Commit statuses on the forge, computed from what PostgreSQL says about an eval. The last
 * status sent per eval and context is remembered, so a repeated report sends nothing and a
 * commit stays below GitHub's 1000 statuses per sha and context (near the limit only changes
 * of state go out). A forge outage or rate limit throws a retryable failure: Temporal retries
 * the activity (after retry-after when given), and the retry sends the state as it is then.
 * Under `statuses = "failures"` or `"all"` each attribute gets its own context as well
 * (forges/attribute-statuses.ts).
 */
import type { Pool } from 'pg';
import { ForgeNotConfiguredError } from '../../forges/errors.ts';
import { asActivityFailure } from '../../forges/retry.ts';
import { capNote, planAttributeStatuses, type AttributeFacts, type AttributeStatus } from '../../forges/attribute-statuses.ts';
import { describeStatuses, type DesiredStatus } from '../../forges/statuses.ts';
import { BUILD_CONTEXT } from '../../forges/types.ts';
import type { StatusMode } from '../../config/repo-schema.ts';
import type { Forges, RepositoryRef } from '../../forges/types.ts';
import type { Logger } from '../../lib/log.ts';
import type { EvalStatus } from '../../workflows/types.ts';
import { countProgress } from '../../queries/progress.ts';
import { failingConstituents, jobState, readEvalJobs, type EvalJob } from '../../queries/jobs.ts';

/** Sends an eval's commit statuses; local projects have no forge and get none. */
export type ForgeStatusReporter = (evalId: string) => Promise<void>;

export interface ForgeStatusDeps {
  pool: Pool;
  forges?: Forges;
  /** Base of the dashboard links (`api.public-url`). */
  publicUrl?: string;
  log?: Logger;
  /** Attributes of a commit that get a status of their own (default MAX_ATTRIBUTE_STATUSES, GitHub's limit). */
  attributeStatusLimit?: number;
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
  statuses: StatusMode | null;
}

interface AttributeRow {
  attr: string;
  drv_path: string | null;
  eval_error: string | null;
  build_status: string | null;
  build_error: string | null;
  root_cause: string | null;
  aggregate: boolean;
}

/** Each attribute of an eval with the state of the build this eval planned for it (none: cached). */
async function readAttributes(pool: Pool, evalId: string): Promise<AttributeFacts[]> {
  const { rows } = await pool.query<AttributeRow>(
    `SELECT a.attr, a.drv_path, a.error AS eval_error, b.status AS build_status, b.error AS build_error, rd.name AS root_cause,
            a.constituents IS NOT NULL AS aggregate
       FROM eval_attrs a
       LEFT JOIN (build_jobs b JOIN evaluation_builds eb ON eb.build_id = b.id) ON b.drv_path = a.drv_path AND eb.eval_id = a.eval_id
       LEFT JOIN derivations rd ON rd.drv_path = b.dep_failed_drv_path
      WHERE a.eval_id = $1`,
    [evalId],
  );
  // Aggregates follow their constituents: read the way the eval page reads them.
  const aggregates = rows.some((row) => row.aggregate)
    ? new Map((await readEvalJobs(pool, evalId)).filter((job) => job.constituents).map((job) => [job.attr, job]))
    : new Map<string, EvalJob>();
  return rows.map((row) => {
    const job = aggregates.get(row.attr);
    return {
      attr: row.attr,
      drvPath: row.drv_path,
      evalError: row.eval_error,
      buildStatus: row.build_status,
      buildError: row.build_error,
      rootCause: row.root_cause,
      ...(job ? { aggregate: { failed: failingConstituents(job), pending: jobState(job) === 'pending' } } : {}),
    };
  });
}

export function createForgeStatusReporter(deps: ForgeStatusDeps): ForgeStatusReporter {
  const report = async (evalId: string, followCopies: boolean): Promise<void> => {
    const { rows } = await deps.pool.query<EvalRow>(
      `SELECT e.status, e.error, e.commit_sha, e.copied_from, r.forge, r.owner, r.name, r.id AS repository_id, r.forge_installation_id,
              (SELECT count(*) FROM eval_attrs a WHERE a.eval_id = e.id AND a.error IS NULL) AS jobs,
              (SELECT count(*) FROM eval_attrs a WHERE a.eval_id = e.id AND a.error IS NOT NULL) AS attr_errors,
              (SELECT n.commit_sha FROM evaluations n WHERE n.project_id = e.project_id AND n.ref = e.ref AND n.id > e.id
                ORDER BY n.id DESC LIMIT 1) AS superseded_by, e.statuses
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
    const ledger = await readLedger(deps.pool, evalId, row);
    // Per-attribute statuses once the eval has its attributes; an eval that failed or was cancelled has none to report.
    const attributes =
      (row.status === 'succeeded' || row.status === 'skipped') && row.statuses && row.statuses !== 'summary'
        ? planAttributeStatuses(row.statuses, await readAttributes(deps.pool, evalId), ledger.attributeContexts, deps.attributeStatusLimit)
        : { statuses: [], wanted: 0 };
    const desired: DesiredStatus[] = describeStatuses({
      status: row.status,
      error: row.error,
      jobs: Number(row.jobs),
      attrErrors: Number(row.attr_errors),
      progress: await countProgress(deps.pool, evalId),
      ...(row.superseded_by ? { supersededBy: row.superseded_by } : {}),
      ...(row.copied_from ? { copiedFrom: String(row.copied_from) } : {}),
      buildNote: capNote(attributes.statuses.length, attributes.wanted, deps.attributeStatusLimit),
    });
    const repo: RepositoryRef = {
      owner: row.owner,
      name: row.name,
      installationId: row.forge_installation_id === null ? null : Number(row.forge_installation_id),
    };
    const base = (deps.publicUrl ?? 'http://localhost:8080').replace(/\/+$/, '');
    const evalUrl = `${base}/ci/evals/${evalId}`;
    const targetOf = (status: DesiredStatus | AttributeStatus): string =>
      'drvPath' in status && status.drvPath ? `${base}/ci/builds/${status.drvPath.slice(status.drvPath.lastIndexOf('/') + 1, status.drvPath.lastIndexOf('/') + 33)}` : evalUrl;
    for (const status of [...desired, ...attributes.statuses]) {
      if (!worthSending(ledger, status)) continue;
      try {
        await forge.setStatus(repo, row.commit_sha, { context: status.context, state: status.state, description: status.description, targetUrl: targetOf(status) });
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

/** What was sent before: this eval's last status per context, and the commit's statuses per context across evals. */
interface Ledger {
  last: Map<string, { state: string; description: string }>;
  spent: Map<string, number>;
  /** Per-attribute contexts this eval has sent. */
  attributeContexts: Set<string>;
}

/** Two queries per report, whatever the number of contexts. */
async function readLedger(pool: Pool, evalId: string, row: EvalRow): Promise<Ledger> {
  const mine = await pool.query<{ context: string; state: string; description: string }>(
    'SELECT context, state, description FROM forge_statuses WHERE eval_id = $1',
    [evalId],
  );
  const spent = await pool.query<{ context: string; total: string }>(
    `SELECT s.context, sum(s.sent) AS total FROM forge_statuses s
       JOIN evaluations e ON e.id = s.eval_id JOIN projects p ON p.id = e.project_id
      WHERE p.repository_id = $1 AND e.commit_sha = $2
      GROUP BY s.context`,
    [row.repository_id, row.commit_sha],
  );
  return {
    last: new Map(mine.rows.map((r) => [r.context, { state: r.state, description: r.description }])),
    spent: new Map(spent.rows.map((r) => [r.context, Number(r.total)])),
    attributeContexts: new Set(mine.rows.map((r) => r.context).filter((context) => context.startsWith(`${BUILD_CONTEXT}/`))),
  };
}

/** False when the same status was sent last time, or when the commit's status budget for its context is spent. */
function worthSending(ledger: Ledger, status: { context: string; state: string; description: string }): boolean {
  const last = ledger.last.get(status.context);
  if (last && last.state === status.state && last.description === status.description) return false;
  const total = ledger.spent.get(status.context) ?? 0;
  if (total >= HARD_LIMIT) return false;
  return !(total >= PROGRESS_BUDGET && last?.state === status.state);
}
