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
import { FINAL_BUILD_STATUSES, OUTPUT_STATUSES, type BuildResult, type BuildStatus, type BuiltOutput } from '../../workflows/types.ts';
import { WINDOW } from '../../workflows/eval.ts';
import { announceBuildResult, checkBuildInputs, describeBuildInputs, startReadyDependents, type StartSettings } from './scheduler.ts';
import { builderInputColumns, toBuilderInputs, type BuilderInputRow } from './build-inputs.ts';

/** Results a new run of a build workflow repeats instead of building again. */
const REPEATED_RESULTS: readonly BuildStatus[] = ['succeeded', 'failed', 'dep-failed', 'timed-out', 'failed-with-output'];

type BuildActivities = Pick<
  CoordinatorActivities,
  'beginBuild' | 'checkBuildInputs' | 'recordBuild' | 'finishBuild' | 'announceBuild' | 'describeBuildInputs'
>;

export function createBuildActivities({
  pool,
  client,
  settings = {},
  warn,
}: {
  pool: Pool;
  client: Client;
  /** How builds started on a success (`startReadyDependents`) are configured. */
  settings?: StartSettings;
  warn?: (message: string) => void;
}): BuildActivities {
  const begin = new Batcher((drvPaths: string[]) => beginBatch(pool, drvPaths), { key: (drvPath) => drvPath });
  const records = new Batcher(async (updates: BuildRecord[]) => {
    await recordBatch(pool, updates);
    await recordProducts(pool, updates);
    return updates.map(() => undefined);
  }, { key: (update) => update.drvPath });
  const recordBuild = (update: BuildRecord): Promise<void> => records.submit(update);

  return {
    checkBuildInputs: (drvPath) => checkBuildInputs(pool, drvPath),
    describeBuildInputs: (drvPath) => describeBuildInputs(pool, drvPath),
    recordBuild,

    async finishBuild(update, result, subscribers) {
      await recordBuild(update);
      if (!OUTPUT_STATUSES.includes(result.status)) return announceBuildResult(client, result, subscribers);
      // Once the success is recorded, the build workflow's task may end: the dependents' first
      // tasks wait for it on this worker. Starting them and telling the evals goes on meanwhile;
      // if this process dies first, each eval's next pass reads the result from PostgreSQL
      // (scheduler.ts, invariant 4) and starts what it made ready.
      void startReadyDependents(pool, client, update.drvPath, subscribers, WINDOW, settings)
        .catch((error: Error) => warn?.(`starting the builds waiting for ${update.drvPath} is left to their evals: ${error.message}`))
        .then(() => announceBuildResult(client, result, subscribers));
      return subscribers;
    },

    announceBuild: (result, subscribers) => announceBuildResult(client, result, subscribers),

    async beginBuild(drvPath): Promise<BuildStart> {
      const row = await begin.submit(drvPath);
      if (row.status && REPEATED_RESULTS.includes(row.status)) {
        const result: BuildResult = { drvPath, status: row.status };
        if (row.dep_failed_drv_path) result.rootCause = row.dep_failed_drv_path;
        if (row.error) result.error = row.error;
        if (OUTPUT_STATUSES.includes(row.status)) result.outputs = toOutputs(row.outputs ?? []);
        return { result };
      }
      return { inputs: toBuilderInputs(row) };
    },
  };
}

interface BeginRow extends BuilderInputRow {
  drv_path: string;
  status: BuildStatus | null;
  dep_failed_drv_path: string | null;
  error: string | null;
  outputs: OutputRow[] | null;
}

/**
 * Where each build stands, its inputs and its outputs, in one statement; a build whose result
 * is not repeated is put back to pending on the way (a new run of its workflow builds it), and
 * its start forgotten: the builder time charged for it counts from this run's start.
 */
async function beginBatch(pool: Pool, drvPaths: string[]): Promise<BeginRow[]> {
  const { rows } = await pool.query<BeginRow>(
    `WITH current AS (
       SELECT r.drv_path, b.id, b.status, b.dep_failed_drv_path, b.error
         FROM unnest($1::text[]) AS r(drv_path) LEFT JOIN build_jobs b ON b.drv_path = r.drv_path
     ), reset AS (
       UPDATE build_jobs b
          SET status = 'pending', dep_failed_drv_path = NULL, error = NULL, exit_code = NULL,
              started_at = NULL, finished_at = NULL, updated_at = now()
         FROM current c
        WHERE b.id = c.id AND NOT c.status = ANY($2::text[])
     )
     SELECT c.drv_path, c.status, c.dep_failed_drv_path, c.error,
            ${builderInputColumns('c.drv_path')},
            (SELECT json_agg(o ORDER BY o.output_name) FROM (
               SELECT output_name, out_path, nar_hash, nar_size, "references"
                 FROM derivation_outputs WHERE drv_path = c.drv_path) o) AS outputs
       FROM current c`,
    [drvPaths, REPEATED_RESULTS],
  );
  const byPath = new Map(rows.map((row) => [row.drv_path, row]));
  return drvPaths.map((drvPath) => byPath.get(drvPath)!);
}

/**
 * Records builds' states, and successes' outputs, in one statement (one update per build).
 * Parallel arrays through unnest, not a JSON record set: the planner then knows the batch is small
 * and looks builds up by index instead of scanning every build of every eval.
 *
 * A build that reaches a final state from an open one is charged to its projects' builder time
 * (`record_builder_time`, migrations/0005_fairness.sql), from its start to now. The state before
 * the update is read under a row lock, so a result recorded again (a retried activity, a replayed
 * workflow task) finds the build final already and charges nothing, even when two records race.
 * The time is split equally between the projects whose evals planned the build: each needed the
 * whole build, and the shares already weigh the usage (seconds per share), so splitting by shares
 * too would count them twice. Evals since cancelled do not pay while another still wants it.
 */
async function recordBatch(pool: Pool, updates: BuildRecord[]): Promise<void> {
  const outputs = updates.flatMap((update) =>
    OUTPUT_STATUSES.includes(update.status) && update.outputs ? update.outputs.map((output) => ({ drvPath: update.drvPath, ...output })) : [],
  );
  await pool.query(
    `WITH u AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::boolean[])
         AS u(drv_path, status, attempt, builder, root_cause, error, output_size, final)
     ), before AS (
       SELECT b.id, b.drv_path, b.status, b.started_at
         FROM build_jobs b JOIN u ON u.drv_path = b.drv_path
        ORDER BY b.id
          FOR UPDATE OF b
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
         FROM u JOIN before p ON p.drv_path = u.drv_path
        WHERE b.id = p.id
     ), o AS (
       SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[])
         AS o(drv_path, name, path, nar_hash, nar_size, refs)
     ), registered AS (
       -- The first successful upload fixes each output's canonical NAR hash; later ones never change it.
       UPDATE derivation_outputs d
          SET out_path = coalesce(d.out_path, o.path), nar_hash = o.nar_hash, nar_size = o.nar_size,
              "references" = ARRAY(SELECT json_array_elements_text(o.refs::json)), registered_at = now()
         FROM o
        WHERE d.drv_path = o.drv_path AND d.output_name = o.name AND d.nar_hash IS NULL
     ), unproduced AS (
       -- What an earlier run of a build that produced output recorded as its products goes;
       -- recordProducts inserts this run's, if it has any, in the next statement.
       DELETE FROM build_products bp USING u WHERE bp.drv_path = u.drv_path AND u.status = ANY($16::text[])
     ), charged AS (
       SELECT p.id, greatest(0, extract(epoch FROM now() - p.started_at))::float8 AS seconds
         FROM u JOIN before p ON p.drv_path = u.drv_path
        WHERE u.final AND NOT p.status = ANY($15::text[]) AND p.started_at IS NOT NULL
     ), planners AS (
       SELECT c.id, c.seconds, v.project_id, bool_or(v.status <> 'cancelled') AS wanted
         FROM charged c
         JOIN evaluation_builds e ON e.build_id = c.id
         JOIN evaluations v ON v.id = e.eval_id
        GROUP BY c.id, c.seconds, v.project_id
     ), payers AS (
       SELECT id, seconds, project_id
         FROM (SELECT *, bool_or(wanted) OVER (PARTITION BY id) AS anyone_wanted FROM planners) w
        WHERE wanted OR NOT anyone_wanted
     )
     SELECT record_builder_time(project_id, sum(share))
       FROM (SELECT project_id, seconds / count(*) OVER (PARTITION BY id) AS share FROM payers) s
      GROUP BY project_id`,
    [
      updates.map((u) => u.drvPath),
      updates.map((u) => u.status),
      updates.map((u) => u.attempt ?? null),
      updates.map((u) => u.builder ?? null),
      updates.map((u) => (u.status === 'dep-failed' ? (u.rootCause ?? null) : null)),
      updates.map((u) => u.error ?? null),
      updates.map((u) => (u.outputs ? u.outputs.reduce((sum, o) => sum + o.narSize, 0) : null)),
      updates.map((u) => REPEATED_RESULTS.includes(u.status) || u.status === 'cancelled'),
      outputs.map((o) => o.drvPath),
      outputs.map((o) => o.name),
      outputs.map((o) => o.path),
      outputs.map((o) => o.narHash),
      outputs.map((o) => o.narSize),
      outputs.map((o) => JSON.stringify(o.references)),
      FINAL_BUILD_STATUSES,
      OUTPUT_STATUSES,
    ],
  );
}

/**
 * The products of builds that produced output, after recordBatch removed what an earlier attempt
 * recorded: no statement at all for the usual build without products.
 */
async function recordProducts(pool: Pool, updates: BuildRecord[]): Promise<void> {
  const built = updates.filter((u) => OUTPUT_STATUSES.includes(u.status));
  const rows = built.flatMap((u) => (u.products ?? []).map((p, position) => ({ drvPath: u.drvPath, position, ...p })));
  if (rows.length === 0) return;
  await pool.query(
    `INSERT INTO build_products (drv_path, position, type, subtype, path, name, default_path, file_size, sha256)
     SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
     ON CONFLICT (drv_path, position) DO NOTHING`,
    [
      rows.map((r) => r.drvPath),
      rows.map((r) => r.position),
      rows.map((r) => r.type),
      rows.map((r) => r.subtype),
      rows.map((r) => r.path),
      rows.map((r) => r.name),
      rows.map((r) => r.defaultPath ?? null),
      rows.map((r) => r.fileSize ?? null),
      rows.map((r) => r.sha256 ?? null),
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
