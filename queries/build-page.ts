/**
 * One build as its dashboard page shows it: the derivation, the build row, its outputs, the
 * evals that include it, the builds its failure took down, and the live log tail.
 */
import type { Pool } from 'pg';
import { readProducts, type ProductView } from './products.ts';
import { logKey } from '../cache/layout.ts';
import type { CacheBackend } from '../cache/types.ts';
import { FINAL_BUILD_STATUSES, type BuildStatus } from '../workflows/types.ts';
import { BUILD_COLUMNS, BUILD_ROOT_JOIN, buildHashPart, toBuildRow, type BuildColumns, type BuildRow } from './builds.ts';
import { iso } from './time.ts';

/** The build row with what only its own page shows. */
export interface BuildRecordView extends BuildRow {
  id: string;
  priority: number;
  workflowId: string | null;
  exitCode: number | null;
  outputSize: number | null;
  logSize: number | null;
  logTruncated: boolean;
  createdAt: string;
  uploadStartedAt: string | null;
}

export interface BuildOutputView {
  name: string;
  path: string | null;
  narHash: string | null;
  narSize: number | null;
}

export interface IncludingEval {
  id: string;
  project: string;
  ref: string;
  commit: string;
  status: string;
  createdAt: string;
  /** The attribute of the eval that is this derivation; null when it is only an input. */
  attr: string | null;
}

export interface BuildPage {
  drvPath: string;
  name: string;
  system: string;
  features: string[];
  /** Null when harmonia-ci never had to build it (its outputs were in a cache). */
  build: BuildRecordView | null;
  outputs: BuildOutputView[];
  evals: IncludingEval[];
  /** Builds that are dep-failed because this one failed (at most `DEPENDENTS_SHOWN`). */
  dependents: Array<{ drvPath: string; name: string }>;
  dependentCount: number;
  log: { tail: string; updatedAt: string } | null;
  /** Files its outputs offer for download. */
  products: ProductView[];
}

const EVALS_SHOWN = 50;
const DEPENDENTS_SHOWN = 20;
const num = (value: string | number | null): number | null => (value === null ? null : Number(value));

/** The build columns are null when the derivation never had a build. */
type DerivationRow = { [K in keyof BuildColumns]: BuildColumns[K] | null } & {
  drv_path: string;
  name: string;
  system: string;
  required_system_features: string[];
  id: string | null;
  priority: number;
  workflow_id: string | null;
  exit_code: number | null;
  output_size: string | null;
  log_size: string | null;
  log_truncated: boolean;
  created_at: Date;
  upload_started_at: Date | null;
};

/** The derivation path of a build given as its `build_jobs.id`, `.drv` path, hash part or `build/<hash>`. */
export async function resolveBuildKey(pool: Pool, key: string): Promise<string | undefined> {
  if (/^\d{1,18}$/.test(key)) {
    const { rows } = await pool.query<{ drv_path: string }>('SELECT drv_path FROM build_jobs WHERE id = $1', [key]);
    return rows[0]?.drv_path;
  }
  const hash = buildHashPart(key);
  if (!hash) return undefined;
  const { rows } = await pool.query<{ drv_path: string }>(`SELECT drv_path FROM derivations WHERE drv_path LIKE '%/' || $1 || '-%'`, [hash]);
  return rows[0]?.drv_path;
}

/** Everything the build page shows; undefined when the key names no known derivation. */
export async function readBuildPage(pool: Pool, key: string): Promise<BuildPage | undefined> {
  const drvPath = await resolveBuildKey(pool, key);
  if (!drvPath) return undefined;
  const { rows } = await pool.query<DerivationRow>(
    `SELECT d.drv_path, d.name, d.system, d.required_system_features,
            b.id, ${BUILD_COLUMNS}, b.priority, b.workflow_id, b.exit_code, b.output_size, b.log_size,
            b.log_truncated, b.created_at, b.upload_started_at
       FROM derivations d
       LEFT JOIN build_jobs b ON b.drv_path = d.drv_path
       ${BUILD_ROOT_JOIN}
      WHERE d.drv_path = $1`,
    [drvPath],
  );
  const row = rows[0];
  if (!row) return undefined;
  const [outputs, evals, dependents, log, products] = await Promise.all([
    readOutputs(pool, drvPath),
    readIncludingEvals(pool, drvPath),
    readDependents(pool, drvPath),
    readLogTail(pool, drvPath),
    readProducts(pool, drvPath),
  ]);
  return {
    drvPath,
    name: row.name,
    system: row.system,
    features: row.required_system_features,
    build: row.id === null ? null : toBuildRecord(row),
    outputs,
    evals,
    dependents: dependents.rows,
    dependentCount: dependents.count,
    log,
    products,
  };
}

function toBuildRecord(row: DerivationRow): BuildRecordView {
  return {
    ...toBuildRow(row as BuildColumns),
    id: String(row.id),
    priority: row.priority,
    workflowId: row.workflow_id,
    exitCode: row.exit_code,
    outputSize: num(row.output_size),
    logSize: num(row.log_size),
    logTruncated: row.log_truncated,
    createdAt: iso(row.created_at)!,
    uploadStartedAt: iso(row.upload_started_at),
  };
}

async function readOutputs(pool: Pool, drvPath: string): Promise<BuildOutputView[]> {
  const { rows } = await pool.query<{ output_name: string; out_path: string | null; nar_hash: string | null; nar_size: string | null }>(
    'SELECT output_name, out_path, nar_hash, nar_size FROM derivation_outputs WHERE drv_path = $1 ORDER BY output_name',
    [drvPath],
  );
  return rows.map((r) => ({ name: r.output_name, path: r.out_path, narHash: r.nar_hash, narSize: num(r.nar_size) }));
}

async function readIncludingEvals(pool: Pool, drvPath: string): Promise<IncludingEval[]> {
  const { rows } = await pool.query<{ id: string; project: string; ref: string; commit_sha: string; status: string; created_at: Date; attr: string | null }>(
    `SELECT ev.id, p.name AS project, ev.ref, ev.commit_sha, ev.status, ev.created_at,
            (SELECT min(a.attr) FROM eval_attrs a WHERE a.eval_id = ev.id AND a.drv_path = $1) AS attr
       FROM evaluations ev JOIN projects p ON p.id = ev.project_id
      WHERE ev.id IN (SELECT eb.eval_id FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id WHERE b.drv_path = $1
                      UNION SELECT a.eval_id FROM eval_attrs a WHERE a.drv_path = $1)
      ORDER BY ev.created_at DESC, ev.id DESC
      LIMIT ${EVALS_SHOWN}`,
    [drvPath],
  );
  return rows.map((r) => ({
    id: String(r.id),
    project: r.project,
    ref: r.ref,
    commit: r.commit_sha,
    status: r.status,
    createdAt: iso(r.created_at)!,
    attr: r.attr,
  }));
}

async function readDependents(pool: Pool, drvPath: string): Promise<{ rows: Array<{ drvPath: string; name: string }>; count: number }> {
  const { rows } = await pool.query<{ drv_path: string; name: string; total: number }>(
    `SELECT b.drv_path, d.name, count(*) OVER ()::int AS total
       FROM build_jobs b JOIN derivations d ON d.drv_path = b.drv_path
      WHERE b.dep_failed_drv_path = $1
      ORDER BY d.name, b.drv_path
      LIMIT ${DEPENDENTS_SHOWN}`,
    [drvPath],
  );
  return { rows: rows.map((r) => ({ drvPath: r.drv_path, name: r.name })), count: rows[0]?.total ?? 0 };
}

/** The live log tail (last 64 KB) of a build, by derivation path; null when none was recorded. */
export async function readLogTail(pool: Pool, drvPath: string): Promise<{ tail: string; updatedAt: string } | null> {
  const { rows } = await pool.query<{ tail: string; updated_at: Date }>(
    'SELECT t.tail, t.updated_at FROM build_log_tails t JOIN build_jobs b ON b.id = t.build_id WHERE b.drv_path = $1',
    [drvPath],
  );
  const row = rows[0];
  return row ? { tail: row.tail, updatedAt: row.updated_at.toISOString() } : null;
}

/** What the live log stream watches: the build's own row and its log tail. */
export interface BuildLogVersion {
  status: BuildStatus | null;
  buildChangedAt: string | null;
  logChangedAt: string | null;
}

/** The current version of a build and its log, by derivation path. */
export async function readBuildLogVersion(pool: Pool, drvPath: string): Promise<BuildLogVersion> {
  const { rows } = await pool.query<{ status: BuildStatus; updated_at: string; log_updated_at: string | null }>(
    `SELECT b.status, b.updated_at::text AS updated_at, t.updated_at::text AS log_updated_at
       FROM build_jobs b LEFT JOIN build_log_tails t ON t.build_id = b.id WHERE b.drv_path = $1`,
    [drvPath],
  );
  const row = rows[0];
  return { status: row?.status ?? null, buildChangedAt: row?.updated_at ?? null, logChangedAt: row?.log_updated_at ?? null };
}

/** `/log/<drv>` when the binary cache holds the build's full log (it is uploaded once the build ends). */
export async function fullLogHref(cache: CacheBackend | null | undefined, page: BuildPage): Promise<string | undefined> {
  if (!cache || !page.build || !FINAL_BUILD_STATUSES.includes(page.build.status)) return undefined;
  const key = logKey(page.drvPath);
  const stored = await cache.head(key).catch(() => undefined);
  // Store path names may hold `?` and `+`, which mean something else in a URL.
  return stored ? `/log/${encodeURIComponent(key.slice('log/'.length))}` : undefined;
}
