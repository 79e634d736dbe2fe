/**
 * Builds as every view reads them: one build row (status, node, attempts, times, error, root
 * cause) with its SQL columns and mapping, the operator's build detail and log tail, and an
 * eval's builds in order.
 */
import type { Pool } from 'pg';
import type { BuildStatus } from '../workflows/types.ts';
import { readProducts, type ProductView } from './products.ts';
import { iso } from './time.ts';

/** The state of a build: the same for every eval that needs its derivation. */
export interface BuildRow {
  status: BuildStatus;
  node: string | null;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  /** Wall-clock seconds from start to finish; null until both are known. */
  seconds: number | null;
  error: string | null;
  /** For dep-failed: the derivation whose own failure is the cause. */
  rootCause: { drvPath: string; name: string } | null;
}

/** The columns `toBuildRow` reads, from `build_jobs b` joined with `BUILD_ROOT_JOIN`. */
export const BUILD_COLUMNS = `b.status, b.node, b.attempts, b.started_at, b.finished_at, b.error AS build_error,
            extract(epoch FROM b.finished_at - b.started_at)::float8 AS seconds,
            b.dep_failed_drv_path AS root_drv, r.name AS root_name`;

/** Names the root cause of a dep-failed build. */
export const BUILD_ROOT_JOIN = 'LEFT JOIN derivations r ON r.drv_path = b.dep_failed_drv_path';

export interface BuildColumns {
  status: BuildStatus;
  node: string | null;
  attempts: number;
  started_at: Date | null;
  finished_at: Date | null;
  build_error: string | null;
  seconds: number | null;
  root_drv: string | null;
  root_name: string | null;
}

/** A build row from `BUILD_COLUMNS`. */
export function toBuildRow(row: BuildColumns): BuildRow {
  return {
    status: row.status,
    node: row.node,
    attempts: row.attempts,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    seconds: row.seconds,
    error: row.build_error,
    rootCause: row.root_drv ? { drvPath: row.root_drv, name: row.root_name ?? row.root_drv } : null,
  };
}

/** A build with its derivation, as the operator views list an eval's builds. */
export interface BuildSummary extends BuildRow {
  drvPath: string;
  name: string;
  system: string;
}

export interface BuildDetail extends BuildSummary {
  workflowId: string | null;
  /** The newest eval that includes the build and is still the latest of its ref: where `rebuild` goes. */
  latest: { evalId: string; project: string; ref: string } | null;
  /** Files its outputs offer for download (`nix-support/hydra-build-products`). */
  products: ProductView[];
}

export interface BuildLog {
  drvPath: string;
  name: string;
  status: BuildStatus;
  /** The last 64 KB of the log; null when none was recorded. */
  tail: string | null;
  updatedAt: string | null;
}

/** A build of an eval with the live tail of its log, as `harmonia-ci run` follows it. */
export interface BuildWithTail extends BuildSummary {
  /** The last 64 KB of the log; null when none was recorded. */
  tail: string | null;
}

const NIX_HASH = /^[0-9a-df-np-sv-z]{32}$/;

/** The hash part of a build given as a `.drv` path, its hash part, or its workflow id `build/<hash>`; undefined if none of these. */
export function buildHashPart(key: string): string | undefined {
  const base = key.startsWith('build/') ? key.slice('build/'.length) : key.slice(key.lastIndexOf('/') + 1);
  const hash = base.slice(0, 32);
  if (!NIX_HASH.test(hash)) return undefined;
  return base.length === 32 || base[32] === '-' ? hash : undefined;
}

interface SummaryColumns extends BuildColumns {
  id: string;
  drv_path: string;
  name: string;
  system: string;
  workflow_id: string | null;
  tail: string | null;
}

interface FoundBuild {
  id: string;
  workflowId: string | null;
  tail: string | null;
  row: BuildSummary;
}

const EVAL_JOIN = 'JOIN evaluation_builds eb ON eb.build_id = b.id';

/** Builds matching `where` (over `build_jobs b`, with `join` added), in creation order; log tails only when asked, they are up to 64 KB each. */
async function readBuilds(pool: Pool, where: string, params: unknown[], options: { join?: string; tails?: boolean } = {}): Promise<FoundBuild[]> {
  const { rows } = await pool.query<SummaryColumns>(
    `SELECT b.id, b.drv_path, d.name, d.system, b.workflow_id, ${options.tails ? 't.tail' : 'NULL AS tail'}, ${BUILD_COLUMNS}
       FROM build_jobs b ${options.join ?? ''}
       JOIN derivations d ON d.drv_path = b.drv_path
       ${BUILD_ROOT_JOIN}
       ${options.tails ? 'LEFT JOIN build_log_tails t ON t.build_id = b.id' : ''}
      WHERE ${where}
      ORDER BY b.id`,
    params,
  );
  return rows.map((row) => ({
    id: String(row.id),
    workflowId: row.workflow_id,
    tail: row.tail,
    row: { drvPath: row.drv_path, name: row.name, system: row.system, ...toBuildRow(row) },
  }));
}

/** The builds an eval planned, in creation order. */
export async function listEvalBuilds(pool: Pool, evalId: string): Promise<BuildSummary[]> {
  return (await readBuilds(pool, 'eb.eval_id = $1', [evalId], { join: EVAL_JOIN })).map(({ row }) => row);
}

/** The builds an eval planned with their log tails, in creation order. */
export async function listEvalBuildsWithTails(pool: Pool, evalId: string): Promise<BuildWithTail[]> {
  const found = await readBuilds(pool, 'eb.eval_id = $1', [evalId], { join: EVAL_JOIN, tails: true });
  return found.map(({ row, tail }) => ({ ...row, tail }));
}

/** A build by the hash part of its derivation, with where a rebuild would go. */
export async function readBuild(pool: Pool, hashPart: string): Promise<BuildDetail | undefined> {
  const [found] = await readBuilds(pool, `b.drv_path LIKE '%/' || $1 || '-%'`, [hashPart]);
  if (!found) return undefined;
  const latest = await pool.query<{ eval_id: string; project: string; ref: string }>(
    `SELECT ev.id AS eval_id, p.name AS project, ev.ref
       FROM evaluation_builds eb JOIN evaluations ev ON ev.id = eb.eval_id JOIN projects p ON p.id = ev.project_id
      WHERE eb.build_id = $1
        AND ev.id = (SELECT e2.id FROM evaluations e2
                      WHERE e2.project_id = ev.project_id AND e2.ref = ev.ref AND e2.status <> 'skipped'
                      ORDER BY e2.created_at DESC, e2.id DESC LIMIT 1)
      ORDER BY ev.created_at DESC, ev.id DESC LIMIT 1`,
    [found.id],
  );
  const row = latest.rows[0];
  return {
    ...found.row,
    workflowId: found.workflowId,
    latest: row ? { evalId: String(row.eval_id), project: row.project, ref: row.ref } : null,
    products: await readProducts(pool, found.row.drvPath),
  };
}

/** The live log tail of a build by the hash part of its derivation. */
export async function readBuildLog(pool: Pool, hashPart: string): Promise<BuildLog | undefined> {
  const { rows } = await pool.query<{ drv_path: string; name: string; status: BuildStatus; tail: string | null; updated_at: Date | null }>(
    `SELECT b.drv_path, d.name, b.status, t.tail, t.updated_at
       FROM build_jobs b JOIN derivations d ON d.drv_path = b.drv_path
       LEFT JOIN build_log_tails t ON t.build_id = b.id
      WHERE b.drv_path LIKE '%/' || $1 || '-%'`,
    [hashPart],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { drvPath: row.drv_path, name: row.name, status: row.status, tail: row.tail, updatedAt: iso(row.updated_at) };
}
