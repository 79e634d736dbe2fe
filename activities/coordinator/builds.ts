/** Coordinator activities a build workflow calls: where it stands, whether it may start, what happened. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { Batcher } from '../../lib/batcher.ts';
import { buildFinishedSignal } from '../../workflows/definitions.ts';
import type { BuildInputs, BuildRecord, CoordinatorActivities } from '../types.ts';
import type { BuildResult, BuildStatus, BuiltOutput } from '../../workflows/types.ts';

/** Results a new run of a build workflow repeats instead of building again. */
const SETTLED: readonly BuildStatus[] = ['succeeded', 'failed', 'dep-failed', 'timed-out'];
const FAILED_INPUT: readonly BuildStatus[] = ['failed', 'dep-failed', 'timed-out'];

type BuildActivities = Pick<CoordinatorActivities, 'beginBuild' | 'checkBuildInputs' | 'recordBuild' | 'finishBuild' | 'describeBuildInputs'>;

export function createBuildActivities({ pool, client }: { pool: Pool; client: Client }): BuildActivities {
  const checkBuildInputs = async (drvPath: string): Promise<{ ready: boolean; rootCause?: string }> => {
    const { rows } = await pool.query<{ drv_path: string; status: BuildStatus; dep_failed_drv_path: string | null }>(
      `SELECT ib.drv_path, ib.status, ib.dep_failed_drv_path
         FROM derivation_inputs di JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
        WHERE di.drv_path = $1 AND ib.status <> 'succeeded'
        ORDER BY ib.drv_path`,
      [drvPath],
    );
    return readiness(rows);
  };
  const describeBuildInputs = async (drvPath: string): Promise<BuildInputs> => {
    const { rows } = await pool.query<{ out_path: string; nar_hash: string | null }>(
      `SELECT o.out_path, o.nar_hash
         FROM derivation_inputs di
         JOIN derivation_outputs o ON o.drv_path = di.input_drv_path AND o.output_name = ANY(di.output_names)
        WHERE di.drv_path = $1 AND o.out_path IS NOT NULL
        ORDER BY o.out_path`,
      [drvPath],
    );
    return toBuildInputs(rows);
  };
  // Every build starts and ends here, many at once: batched, one round trip per flush.
  const begin = new Batcher((requests: Array<{ drvPath: string; rebuild: boolean }>) => beginBatch(pool, requests), {
    key: (request) => request.drvPath,
  });
  const records = new Batcher(async (updates: BuildRecord[]) => {
    await recordBatch(pool, updates);
    return updates.map(() => undefined);
  }, { key: (update) => update.drvPath });
  const recordBuild = (update: BuildRecord): Promise<void> => records.submit(update);

  return {
    checkBuildInputs,
    describeBuildInputs,
    recordBuild,

    async finishBuild(update, result, subscribers) {
      await recordBuild(update);
      // An eval that finished or was cancelled meanwhile reads results from PostgreSQL anyway.
      await Promise.all(subscribers.map((id) => client.workflow.getHandle(id).signal(buildFinishedSignal, result).catch(() => undefined)));
      return subscribers;
    },

    async beginBuild(drvPath, rebuild) {
      const row = await begin.submit({ drvPath, rebuild });
      if (row.status && SETTLED.includes(row.status) && !rebuild) {
        const result: BuildResult = { drvPath, status: row.status };
        if (row.dep_failed_drv_path) result.rootCause = row.dep_failed_drv_path;
        if (row.error) result.error = row.error;
        if (row.status === 'succeeded') result.outputs = toOutputs(row.outputs ?? []);
        return { result };
      }
      const inputs = readiness(row.waiting ?? []);
      return inputs.ready ? { ...inputs, inputs: toBuildInputs(row.inputs ?? []) } : inputs;
    },
  };
}

/** Whether a build may start, from its input builds that have not succeeded: none, or one that failed (the root cause). */
function readiness(waiting: Array<{ drv_path: string; status: BuildStatus; dep_failed_drv_path: string | null }>): { ready: boolean; rootCause?: string } {
  const failed = waiting.find((input) => FAILED_INPUT.includes(input.status));
  if (failed) return { ready: false, rootCause: failed.dep_failed_drv_path ?? failed.drv_path };
  return { ready: waiting.length === 0 };
}

/** What a builder needs from the input outputs: their paths, and canonical NAR hashes where known. */
function toBuildInputs(rows: Array<{ out_path: string; nar_hash: string | null }>): BuildInputs {
  const canonicalNarHashes: Record<string, string> = {};
  for (const row of rows) if (row.nar_hash) canonicalNarHashes[row.out_path] = row.nar_hash;
  return { inputPaths: rows.map((row) => row.out_path), canonicalNarHashes };
}

interface BeginRow {
  drv_path: string;
  status: BuildStatus | null;
  dep_failed_drv_path: string | null;
  error: string | null;
  /** Input builds not succeeded yet. */
  waiting: Array<{ drv_path: string; status: BuildStatus; dep_failed_drv_path: string | null }> | null;
  /** Output paths used from the inputs, with their canonical NAR hashes when known. */
  inputs: Array<{ out_path: string; nar_hash: string | null }> | null;
  outputs: OutputRow[] | null;
}

/**
 * Where each build stands, its inputs' state and its outputs, in one statement; a build that is
 * not settled (or is rebuilt) is put back to pending on the way.
 */
async function beginBatch(pool: Pool, requests: Array<{ drvPath: string; rebuild: boolean }>): Promise<BeginRow[]> {
  const { rows } = await pool.query<BeginRow>(
    `WITH request AS (
       SELECT * FROM unnest($1::text[], $2::boolean[]) AS r(drv_path, rebuild)
     ), current AS (
       SELECT r.drv_path, r.rebuild, b.id, b.status, b.dep_failed_drv_path, b.error
         FROM request r LEFT JOIN build_jobs b ON b.drv_path = r.drv_path
     ), reset AS (
       UPDATE build_jobs b
          SET status = 'pending', dep_failed_drv_path = NULL, error = NULL, exit_code = NULL,
              finished_at = NULL, updated_at = now()
         FROM current c
        WHERE b.id = c.id AND (c.rebuild OR NOT c.status = ANY($3::text[]))
     )
     SELECT c.drv_path, c.status, c.dep_failed_drv_path, c.error,
            (SELECT json_agg(w ORDER BY w.drv_path) FROM (
               SELECT ib.drv_path, ib.status, ib.dep_failed_drv_path
                 FROM derivation_inputs di JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
                WHERE di.drv_path = c.drv_path AND ib.status <> 'succeeded') w) AS waiting,
            (SELECT json_agg(i ORDER BY i.out_path) FROM (
               SELECT o.out_path, o.nar_hash
                 FROM derivation_inputs di
                 JOIN derivation_outputs o ON o.drv_path = di.input_drv_path AND o.output_name = ANY(di.output_names)
                WHERE di.drv_path = c.drv_path AND o.out_path IS NOT NULL) i) AS inputs,
            (SELECT json_agg(o ORDER BY o.output_name) FROM (
               SELECT output_name, out_path, nar_hash, nar_size, "references"
                 FROM derivation_outputs WHERE drv_path = c.drv_path) o) AS outputs
       FROM current c`,
    [requests.map((r) => r.drvPath), requests.map((r) => r.rebuild), SETTLED],
  );
  const byPath = new Map(rows.map((row) => [row.drv_path, row]));
  return requests.map((r) => byPath.get(r.drvPath)!);
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
      narHash: row.nar_hash ?? '',
      narSize: Number(row.nar_size ?? 0),
      references: row.references ?? [],
    }));
}
