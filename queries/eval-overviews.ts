/**
 * Evals as the dashboard lists and heads them, and the version its live updates compare. Build
 * progress comes from `countProgressOf`, the count the eval workflow and the commit statuses use,
 * so every view agrees on the numbers; a page of evals costs one progress query, not one per eval.
 */
import type { Pool } from 'pg';
import type { EvalProgress, EvalStatus } from '../workflows/types.ts';
import { EVAL_COLUMNS, toEvalRow, type EvalColumns, type EvalRow } from './evals.ts';
import { countProgressOf } from './progress.ts';

/** What decides an eval's overall state (api/dashboard/state.ts). */
export interface EvalFacts {
  status: EvalStatus;
  error: string | null;
  /** Attributes that evaluated to a derivation, and those that failed to evaluate. */
  jobCount: number;
  attrErrors: number;
  progress: EvalProgress;
  copiedFrom: string | null;
}

export interface EvalOverview extends EvalRow, EvalFacts {
  pullRequest: number | null;
  treeHash: string | null;
  workflowId: string | null;
  /** Where the commit is on the forge; null for local checkouts. */
  commitUrl: string | null;
}

interface OverviewRow extends EvalColumns {
  pull_request: number | null;
  tree_hash: string | null;
  workflow_id: string | null;
  copied_from: string | null;
  job_count: number;
  attr_errors: number;
  forge: string;
  clone_url: string;
}

const OVERVIEW_SELECT = `SELECT ${EVAL_COLUMNS}, ev.pull_request, ev.tree_hash, ev.workflow_id, ev.copied_from,
         (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id AND a.error IS NULL) AS job_count,
         (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id AND a.error IS NOT NULL) AS attr_errors,
         r.forge, r.clone_url
    FROM evaluations ev JOIN projects p ON p.id = ev.project_id JOIN repositories r ON r.id = p.repository_id`;

/** `https://github.com/o/r/commit/<sha>` for forge repositories cloned over HTTP(S). */
export function commitUrl(forge: string, cloneUrl: string, sha: string): string | null {
  if (forge !== 'github' && forge !== 'gitea') return null;
  if (!/^https?:\/\//.test(cloneUrl)) return null;
  return `${cloneUrl.replace(/\/+$/, '').replace(/\.git$/, '')}/commit/${sha}`;
}

function toOverview(row: OverviewRow, progress: EvalProgress): EvalOverview {
  return {
    ...toEvalRow(row),
    pullRequest: row.pull_request,
    treeHash: row.tree_hash,
    workflowId: row.workflow_id,
    copiedFrom: row.copied_from === null ? null : String(row.copied_from),
    jobCount: row.job_count,
    attrErrors: row.attr_errors,
    progress,
    commitUrl: commitUrl(row.forge, row.clone_url, row.commit_sha),
  };
}

async function withProgress(pool: Pool, rows: OverviewRow[]): Promise<EvalOverview[]> {
  if (rows.length === 0) return [];
  const progress = await countProgressOf(pool, rows.map((row) => String(row.id)));
  return rows.map((row) => toOverview(row, progress.get(String(row.id))!));
}

/** Several evals by id, newest first. */
export async function readEvalOverviews(pool: Pool, evalIds: string[]): Promise<EvalOverview[]> {
  const { rows } = await pool.query<OverviewRow>(`${OVERVIEW_SELECT} WHERE ev.id = ANY($1::bigint[]) ORDER BY ev.created_at DESC, ev.id DESC`, [evalIds]);
  return withProgress(pool, rows);
}

/** One eval's header; undefined when there is no such eval. */
export async function readEvalOverview(pool: Pool, evalId: string): Promise<EvalOverview | undefined> {
  if (!/^\d{1,18}$/.test(evalId)) return undefined;
  const { rows } = await pool.query<OverviewRow>(`${OVERVIEW_SELECT} WHERE ev.id = $1`, [evalId]);
  const [overview] = await withProgress(pool, rows);
  return overview;
}

export interface EvalPageQuery {
  limit: number;
  /** Evals older than this one (keyset pagination: stable while new evals arrive). */
  before?: string | undefined;
  project?: string | undefined;
  /** Projects to leave out: the private ones the reader may not see. */
  hidden?: readonly string[] | undefined;
}

export interface EvalPage {
  evals: EvalOverview[];
  /** The `before` of the next page; null on the last one. */
  next: string | null;
}

/** A page of evals, newest first. */
export async function listEvalPage(pool: Pool, query: EvalPageQuery): Promise<EvalPage> {
  const { rows } = await pool.query<OverviewRow>(
    `${OVERVIEW_SELECT}
      WHERE ($1::text IS NULL OR p.name = $1)
        AND ($2::bigint IS NULL OR (ev.created_at, ev.id) < (SELECT e.created_at, e.id FROM evaluations e WHERE e.id = $2))
        AND NOT (p.name = ANY($4::text[]))
      ORDER BY ev.created_at DESC, ev.id DESC
      LIMIT $3`,
    [query.project ?? null, query.before ?? null, query.limit + 1, query.hidden ?? []],
  );
  const page = rows.slice(0, query.limit);
  const next = rows.length > query.limit ? String(page.at(-1)!.id) : null;
  return { evals: await withProgress(pool, page), next };
}

/**
 * What changes whenever anything shown about the eval changes: its own row, its attributes, and
 * any of its builds (every build change bumps `build_jobs.updated_at`).
 */
export interface EvalVersion {
  status: string;
  /** `finished_at` as PostgreSQL text, '' while unfinished. */
  finishedAt: string;
  attrs: number;
  builds: number;
  /** Newest build change, PostgreSQL timestamptz text; null before any build exists. */
  buildsChangedAt: string | null;
}

/** The version as one short string (an event id, a query parameter). */
export function evalVersionKey(v: EvalVersion): string {
  return [v.status, v.finishedAt, v.attrs, v.builds, v.buildsChangedAt ?? ''].join('|');
}

/** The current version of an eval, or undefined if it is gone. */
export async function readEvalVersion(pool: Pool, evalId: string): Promise<EvalVersion | undefined> {
  const { rows } = await pool.query<{ status: string; finished_at: string | null; attrs: number; builds: number; changed: string | null }>(
    `SELECT ev.status, ev.finished_at::text AS finished_at,
            (SELECT count(*)::int FROM eval_attrs a WHERE a.eval_id = ev.id) AS attrs,
            (SELECT count(*)::int FROM evaluation_builds eb WHERE eb.eval_id = ev.id) AS builds,
            (SELECT max(b.updated_at)::text FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id
              WHERE eb.eval_id = ev.id) AS changed
       FROM evaluations ev WHERE ev.id = $1`,
    [evalId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { status: row.status, finishedAt: row.finished_at ?? '', attrs: row.attrs, builds: row.builds, buildsChangedAt: row.changed };
}

const PG_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d)?$/;

/** A version key a client sent back; undefined when it is not one (the client then gets everything). */
export function parseEvalVersion(key: string | undefined): EvalVersion | undefined {
  const parts = key?.split('|');
  if (!parts || parts.length !== 5) return undefined;
  const [status = '', finishedAt = '', attrs = '', builds = '', changed = ''] = parts;
  const numbers = [Number(attrs), Number(builds)];
  if (!numbers.every((n) => Number.isSafeInteger(n) && n >= 0) || attrs === '' || builds === '') return undefined;
  if ((changed !== '' && !PG_TIME.test(changed)) || (finishedAt !== '' && !PG_TIME.test(finishedAt))) return undefined;
  return { status, finishedAt, attrs: numbers[0]!, builds: numbers[1]!, buildsChangedAt: changed === '' ? null : changed };
}
