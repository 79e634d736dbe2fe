/**
 * Coordinator activities that keep a build's record: where it stands when its workflow begins,
 * each state it passes, its final result. Every build begins and ends here, many at once, so
 * both are batched: one statement per flush. What may start and who is told is the
 * scheduler's (scheduler.ts).
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { Batcher } from '../../lib/batcher.ts';
import type { NarHash } from '../../daemon/core/hash.ts';
import type { BuildRecord, BuildStart, CoordinatorActivities } from '../types.ts';
import type { BuildResult, BuildStatus, BuiltOutput } from '../../workflows/types.ts';
import { announceBuildResult, checkBuildInputs, describeBuildInputs, inputOutputs, toBuildInputs } from './scheduler.ts';

/** Results a new run of a build workflow repeats instead of building again. */
const SETTLED: readonly BuildStatus[] = ['succeeded', 'failed', 'dep-failed', 'timed-out'];

type BuildActivities = Pick<
  CoordinatorActivities,
  'beginBuild' | 'checkBuildInputs' | 'recordBuild' | 'finishBuild' | 'announceBuild' | 'describeBuildInputs'
>;

export function createBuildActivities({ pool, client }: { pool: Pool; client: Client }): BuildActivities {
  const begin = new Batcher((drvPaths: string[]) => beginBatch(pool, drvPaths), { key: (drvPath) => drvPath });
  const records = new Batcher(async (updates: BuildRecord[]) => {
    await recordBatch(pool, updates);
    return updates.map(() => undefined);
  }, { key: (update) => update.drvPath });
  const recordBuild = (update: BuildRecord): Promise<void> => records.submit(update);

  return {
    checkBuildInputs: (drvPath) => checkBuildInputs(pool, drvPath),
    describeBuildInputs: (drvPath) => describeBuildInputs(pool, drvPath),
    recordBuild,

    async finishBuild(update, result, subscribers) {
      await recordBuild(update);
      return announceBuildResult(client, result, subscribers);
    },

    announceBuild: (result, subscribers) => announceBuildResult(client, result, subscribers),

    async beginBuild(drvPath): Promise<BuildStart> {
      const row = await begin.submit(drvPath);
      if (row.status && SETTLED.includes(row.status)) {
        const result: BuildResult = { drvPath, status: row.status };
        if (row.dep_failed_drv_path) result.rootCause = row.dep_failed_drv_path;
        if (row.error) result.error = row.error;
        if (row.status === 'succeeded') result.outputs = toOutputs(row.outputs ?? []);
        return { result };
      }
      return { inputs: toBuildInputs(row.inputs ?? []) };
    },
  };
}

interface BeginRow {
  drv_path: string;
  status: BuildStatus | null;
  dep_failed_drv_path: string | null;
  error: string | null;
  /** Output paths used from the inputs, with their canonical NAR hashes when known. */
  inputs: Array<{ out_path: string; nar_hash: string | null }> | null;
  outputs: OutputRow[] | null;
}

/**
 * Where each build stands, its inputs and its outputs, in one statement; a build that is not
 * settled is put back to pending on the way (a new run of its workflow builds it).
 */
async function beginBatch(pool: Pool, drvPaths: string[]): Promise<BeginRow[]> {
  const { rows } = await pool.query<BeginRow>(
    `WITH current AS (
       SELECT r.drv_path, b.id, b.status, b.dep_failed_drv_path, b.error
         FROM unnest($1::text[]) AS r(drv_path) LEFT JOIN build_jobs b ON b.drv_path = r.drv_path
     ), reset AS (
       UPDATE build_jobs b
          SET status = 'pending', dep_failed_drv_path = NULL, error = NULL, exit_code = NULL,
              finished_at = NULL, updated_at = now()
         FROM current c
        WHERE b.id = c.id AND NOT c.status = ANY($2::text[])
     )
     SELECT c.drv_path, c.status, c.dep_failed_drv_path, c.error,
            (SELECT json_agg(i ORDER BY i.out_path) FROM (${inputOutputs('c.drv_path')}) i) AS inputs,
            (SELECT json_agg(o ORDER BY o.output_name) FROM (
               SELECT output_name, out_path, nar_hash, nar_size, "references"
                 FROM derivation_outputs WHERE drv_path = c.drv_path) o) AS outputs
       FROM current c`,
    [drvPaths, SETTLED],
  );
  const byPath = new Map(rows.map((row) => [row.drv_path, row]));
  return drvPaths.map((drvPath) => byPath.get(drvPath)!);
}

/**
 * Records builds' states, and successes' outputs, in one statement (one update per build).
 * Parallel arrays through unnest, not a JSON record set: the planner then knows the batch is small
 * and looks builds up by index instead of scanning every build of every eval.
 */
async function recordBatch(pool: Pool, updates: BuildRecord[]): Promise<void> {
  const outputs = updates.flatMap((update) =>
    update.status === 'succeeded' && update.outputs ? update.outputs.map((output) => ({ drvPath: update.drvPath, ...output })) : [],
  );
  await pool.query(
    `WITH u AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::boolean[])
         AS u(drv_path, status, attempt, builder, root_cause, error, output_size, final)
     ), build AS (
       UPDATE build_jobs b
          SET status = u.status,
              attempts = greatest(b.attempts, coalesce(u.attempt, b.attempts)),
              node = coalesce(u.builder, b.node),
              dep_failed_drv_path = u.root_cause,
              error = u.error,
              output_size = coalesce(u.output_size, b.output_size),
              started_at = CASE WHEN u.status = 'building' AND b.started_at IS NULL THEN now() ELSE b.started_at END,
              upload_started_at = CASE WHEN u.status = 'uploading' THEN now() ELSE b.upload_started_at END,
              finished_at = CASE WHEN u.final THEN now() ELSE NULL END,
              updated_at = now()
         FROM u
        WHERE b.drv_path = u.drv_path
     ), o AS (
       SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[])
         AS o(drv_path, name, path, nar_hash, nar_size, refs)
     )
     -- The first successful upload fixes each output's canonical NAR hash; later ones never change it.
     UPDATE derivation_outputs d
        SET out_path = coalesce(d.out_path, o.path), nar_hash = o.nar_hash, nar_size = o.nar_size,
            "references" = ARRAY(SELECT json_array_elements_text(o.refs::json)), registered_at = now()
       FROM o
      WHERE d.drv_path = o.drv_path AND d.output_name = o.name AND d.nar_hash IS NULL`,
    [
      updates.map((u) => u.drvPath),
      updates.map((u) => u.status),
      updates.map((u) => u.attempt ?? null),
      updates.map((u) => u.builder ?? null),
      updates.map((u) => (u.status === 'dep-failed' ? (u.rootCause ?? null) : null)),
      updates.map((u) => u.error ?? null),
      updates.map((u) => (u.outputs ? u.outputs.reduce((sum, o) => sum + o.narSize, 0) : null)),
      updates.map((u) => SETTLED.includes(u.status) || u.status === 'cancelled'),
      outputs.map((o) => o.drvPath),
      outputs.map((o) => o.name),
      outputs.map((o) => o.path),
      outputs.map((o) => o.narHash),
      outputs.map((o) => o.narSize),
      outputs.map((o) => JSON.stringify(o.references)),
    ],
  );
}

interface OutputRow {
  output_name: string;
  out_path: string | null;
  nar_hash: string | null;
  nar_size: string | number | null;
  references: string[] | null;
}

function toOutputs(rows: OutputRow[]): BuiltOutput[] {
  return rows
    .filter((row) => row.out_path !== null)
    .map((row) => ({
      name: row.output_name,
      path: row.out_path!,
      narHash: (row.nar_hash ?? '') as NarHash,
      narSize: Number(row.nar_size ?? 0),
      references: row.references ?? [],
    }));
}
