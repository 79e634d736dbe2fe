/**
 * Retention: evals older than the retention leave the database (the newest eval of each ref
 * stays, however old), then cache objects that no remaining eval reaches and that are older than a
 * grace period leave the storage. An eval reaches the outputs of its attributes' derivations and of
 * their input derivations (recorded at planning), and everything those outputs reference
 * (followed through the narinfos); logs are kept for evals younger than the log retention.
 * Narinfos go before the NARs they point to, so a client never finds a narinfo without its NAR.
 */
import type { Pool } from 'pg';
import { parseNarInfo } from '../daemon/core/narinfo.ts';
import { parseStorePath } from '../daemon/core/store-path.ts';
import { readText } from './backend-reader.ts';
import { classifyKey } from './layout.ts';
import type { CacheBackend, StoredObject } from './types.ts';

export const DAY_MS = 24 * 3600_000;

export interface GcOptions {
  pool: Pool;
  backend: CacheBackend;
  /** Evals older than this leave the database (default 90 days). */
  retentionMs?: number;
  /** Logs of derivations reached only by evals older than this are deleted (default 30 days). */
  logRetentionMs?: number;
  /** Objects younger than this are never deleted: uploads whose narinfo is still coming (default 24 h). */
  graceMs?: number;
  /** Report what would go, change nothing. */
  dryRun?: boolean;
  now?: Date;
}

export interface GcReport {
  evalsDeleted: number;
  /** Keys deleted (or, in a dry run, that would be) by kind. */
  deleted: { narinfo: number; listing: number; nar: number; log: number };
  bytesFreed: number;
  kept: number;
  stagingRemoved: number;
}

/** Evals older than the retention ($2 ms), except the newest of each ref. */
const EXPIRED_EVALS = `
  SELECT e.id FROM evaluations e
   WHERE e.status NOT IN ('queued', 'running')
     AND e.created_at < $1::timestamptz - make_interval(secs => $2::numeric / 1000)
     AND e.id <> (SELECT newest.id FROM evaluations newest
                   WHERE newest.project_id = e.project_id AND newest.ref = e.ref
                   ORDER BY newest.created_at DESC, newest.id DESC LIMIT 1)`;

/** Derivations the remaining evals (created after $1) reach: their attributes and all inputs, recursively. */
const REACHED_DERIVATIONS = `
  WITH RECURSIVE closure(drv_path) AS (
    SELECT ea.drv_path FROM eval_attrs ea JOIN evaluations e ON e.id = ea.eval_id
     WHERE ea.drv_path IS NOT NULL AND e.created_at >= $1
    UNION
    SELECT di.input_drv_path FROM derivation_inputs di JOIN closure c ON di.drv_path = c.drv_path
  )`;

async function liveOutputs(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ out_path: string }>(
    `${REACHED_DERIVATIONS}
     SELECT DISTINCT o.out_path FROM derivation_outputs o JOIN closure c USING (drv_path) WHERE o.out_path IS NOT NULL`,
    [new Date(0)],
  );
  return rows.map((row) => row.out_path);
}

async function liveLogs(pool: Pool, since: Date): Promise<Set<string>> {
  const { rows } = await pool.query<{ drv_path: string }>(`${REACHED_DERIVATIONS} SELECT drv_path FROM closure`, [since]);
  return new Set(rows.map((row) => `log/${row.drv_path.slice(row.drv_path.lastIndexOf('/') + 1)}`));
}

/** Narinfo keys of the live paths and their runtime closure, and the NAR keys those narinfos use. */
async function liveObjects(backend: CacheBackend, roots: string[]): Promise<{ narInfos: Set<string>; nars: Set<string> }> {
  const narInfos = new Set<string>();
  const nars = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const path = queue.pop()!;
    const key = `${parseStorePath(path).hashPart}.narinfo`;
    if (narInfos.has(key)) continue;
    narInfos.add(key);
    const text = await readText(backend, key);
    if (text === undefined) continue;
    const info = parseNarInfo(text);
    nars.add(info.url);
    queue.push(...info.references.filter((ref) => ref !== path));
  }
  return { narInfos, nars };
}

/** NAR keys used by narinfos written since `since`: a publish that raced with this collection. */
async function narsOfRecentNarInfos(backend: CacheBackend, since: Date): Promise<Set<string>> {
  const nars = new Set<string>();
  for await (const object of backend.list()) {
    if (classifyKey(object.key) !== 'narinfo' || object.lastModified < since) continue;
    const text = await readText(backend, object.key);
    if (text !== undefined) nars.add(parseNarInfo(text).url);
  }
  return nars;
}

/** Runs one collection; see the module comment for what is kept. */
export async function collectGarbage(options: GcOptions): Promise<GcReport> {
  const { pool, backend } = options;
  const now = options.now ?? new Date();
  const graceEnd = new Date(now.getTime() - (options.graceMs ?? DAY_MS));
  const retentionMs = options.retentionMs ?? 90 * DAY_MS;
  const logSince = new Date(now.getTime() - (options.logRetentionMs ?? 30 * DAY_MS));

  const evalsDeleted = options.dryRun
    ? Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM (${EXPIRED_EVALS}) expired`, [now, retentionMs])).rows[0]!.n)
    : ((await pool.query(`DELETE FROM evaluations WHERE id IN (${EXPIRED_EVALS})`, [now, retentionMs])).rowCount ?? 0);
  // In a dry run the doomed evals still count as live: what they alone reach is then reported as kept.
  const live = await liveObjects(backend, await liveOutputs(pool));
  const logs = await liveLogs(pool, logSince);

  // A listing lives and dies with the narinfo of its path.
  const isLive = (kind: 'narinfo' | 'listing' | 'nar' | 'log', key: string): boolean =>
    kind === 'narinfo' ? live.narInfos.has(key) : kind === 'listing' ? live.narInfos.has(`${key.slice(0, -'.ls'.length)}.narinfo`) : kind === 'nar' ? live.nars.has(key) : logs.has(key);
  const doomed: Record<'narinfo' | 'listing' | 'nar' | 'log', StoredObject[]> = { narinfo: [], listing: [], nar: [], log: [] };
  let kept = 0;
  const inGrace: StoredObject[] = [];
  for await (const object of backend.list()) {
    const kind = classifyKey(object.key);
    if (kind === undefined || kind === 'cache-info' || kind === 'incoming') continue;
    if (object.lastModified >= graceEnd) inGrace.push(object);
    else if (isLive(kind, object.key)) kept++;
    else doomed[kind].push(object);
  }
  // NARs of narinfos kept by the grace period (or written during this run) stay with them.
  const protectedNars = await narsOfRecentNarInfos(backend, graceEnd);
  doomed.nar = doomed.nar.filter((object) => !protectedNars.has(object.key));
  kept += inGrace.length;

  const report: GcReport = {
    evalsDeleted,
    deleted: { narinfo: doomed.narinfo.length, listing: doomed.listing.length, nar: doomed.nar.length, log: doomed.log.length },
    bytesFreed: [...doomed.narinfo, ...doomed.listing, ...doomed.nar, ...doomed.log].reduce((sum, object) => sum + object.size, 0),
    kept,
    stagingRemoved: 0,
  };
  if (options.dryRun) return report;
  await backend.delete(doomed.narinfo.map((object) => object.key));
  await backend.delete(doomed.listing.map((object) => object.key));
  await backend.delete(doomed.nar.map((object) => object.key));
  await backend.delete(doomed.log.map((object) => object.key));
  report.stagingRemoved = (await backend.removeStaleUploads?.(graceEnd)) ?? 0;
  return report;
}
