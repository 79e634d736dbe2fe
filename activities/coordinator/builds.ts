/** Coordinator activities a build workflow calls: where it stands, whether it may start, what happened. */
import type { Pool } from 'pg';
import type { BuildRecord, CoordinatorActivities } from '../types.ts';
import type { BuildResult, BuildStatus, BuiltOutput } from '../../workflows/types.ts';

/** Results a new run of a build workflow repeats instead of building again. */
const SETTLED: readonly BuildStatus[] = ['succeeded', 'failed', 'dep-failed', 'timed-out'];
const FAILED_INPUT: readonly BuildStatus[] = ['failed', 'dep-failed', 'timed-out'];

type BuildActivities = Pick<CoordinatorActivities, 'beginBuild' | 'checkBuildInputs' | 'recordBuild' | 'describeBuildInputs'>;

export function createBuildActivities({ pool }: { pool: Pool }): BuildActivities {
  return {
    async beginBuild(drvPath, rebuild) {
      const { rows } = await pool.query<{ status: BuildStatus; dep_failed_drv_path: string | null; error: string | null }>(
        'SELECT status, dep_failed_drv_path, error FROM build_jobs WHERE drv_path = $1',
        [drvPath],
      );
      const row = rows[0];
      if (row && SETTLED.includes(row.status) && !rebuild) {
        const result: BuildResult = { drvPath, status: row.status };
        if (row.dep_failed_drv_path) result.rootCause = row.dep_failed_drv_path;
        if (row.error) result.error = row.error;
        if (row.status === 'succeeded') result.outputs = await readOutputs(pool, drvPath);
        return { result };
      }
      await pool.query(
        `UPDATE build_jobs SET status = 'pending', dep_failed_drv_path = NULL, error = NULL, exit_code = NULL,
                finished_at = NULL, updated_at = now()
          WHERE drv_path = $1`,
        [drvPath],
      );
      return {};
    },

    async checkBuildInputs(drvPath) {
      const { rows } = await pool.query<{ drv_path: string; status: BuildStatus; dep_failed_drv_path: string | null }>(
        `SELECT ib.drv_path, ib.status, ib.dep_failed_drv_path
           FROM derivation_inputs di JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
          WHERE di.drv_path = $1 AND ib.status <> 'succeeded'
          ORDER BY ib.drv_path`,
        [drvPath],
      );
      const failed = rows.find((row) => FAILED_INPUT.includes(row.status));
      if (failed) return { ready: false, rootCause: failed.dep_failed_drv_path ?? failed.drv_path };
      return { ready: rows.length === 0 };
    },

    async describeBuildInputs(drvPath) {
      const { rows } = await pool.query<{ out_path: string; nar_hash: string | null }>(
        `SELECT o.out_path, o.nar_hash
           FROM derivation_inputs di
           JOIN derivation_outputs o ON o.drv_path = di.input_drv_path AND o.output_name = ANY(di.output_names)
          WHERE di.drv_path = $1 AND o.out_path IS NOT NULL
          ORDER BY o.out_path`,
        [drvPath],
      );
      const canonicalNarHashes: Record<string, string> = {};
      for (const row of rows) if (row.nar_hash) canonicalNarHashes[row.out_path] = row.nar_hash;
      return { inputPaths: rows.map((row) => row.out_path), canonicalNarHashes };
    },

    async recordBuild(update: BuildRecord) {
      const final = SETTLED.includes(update.status) || update.status === 'cancelled';
      await pool.query(
        `UPDATE build_jobs
            SET status = $2,
                attempts = greatest(attempts, coalesce($3, attempts)),
                node = coalesce($4, node),
                dep_failed_drv_path = $5,
                error = $6,
                output_size = coalesce($7, output_size),
                started_at = CASE WHEN $2 = 'building' AND started_at IS NULL THEN now() ELSE started_at END,
                upload_started_at = CASE WHEN $2 = 'uploading' THEN now() ELSE upload_started_at END,
                finished_at = CASE WHEN $8 THEN now() ELSE NULL END,
                updated_at = now()
          WHERE drv_path = $1`,
        [
          update.drvPath,
          update.status,
          update.attempt ?? null,
          update.builder ?? null,
          update.status === 'dep-failed' ? (update.rootCause ?? null) : null,
          update.error ?? null,
          update.outputs ? update.outputs.reduce((sum, o) => sum + o.narSize, 0) : null,
          final,
        ],
      );
      if (update.status === 'succeeded' && update.outputs) await recordOutputs(pool, update.drvPath, update.outputs);
    },
  };
}

/** The first successful upload fixes each output's canonical NAR hash; later ones never change it. */
async function recordOutputs(pool: Pool, drvPath: string, outputs: BuiltOutput[]): Promise<void> {
  for (const output of outputs) {
    await pool.query(
      `UPDATE derivation_outputs
          SET out_path = coalesce(out_path, $3), nar_hash = $4, nar_size = $5, "references" = $6, registered_at = now()
        WHERE drv_path = $1 AND output_name = $2 AND nar_hash IS NULL`,
      [drvPath, output.name, output.path, output.narHash, output.narSize, output.references],
    );
  }
}

export async function readOutputs(pool: Pool, drvPath: string): Promise<BuiltOutput[]> {
  const { rows } = await pool.query<{
    output_name: string;
    out_path: string | null;
    nar_hash: string | null;
    nar_size: string | null;
    references: string[] | null;
  }>(
    `SELECT output_name, out_path, nar_hash, nar_size, "references"
       FROM derivation_outputs WHERE drv_path = $1 ORDER BY output_name`,
    [drvPath],
  );
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
