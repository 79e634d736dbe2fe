/**
 * What a build's builder gets besides the `.drv`, read from PostgreSQL: the output paths it uses
 * from its input derivations with their canonical NAR hashes, and the job's limits. Both
 * `beginBuild` and the scheduler's starts (a first run's input) read them the same way.
 */
import type { NarHash } from '../../daemon/core/hash.ts';
import type { BuildInputs } from '../types.ts';

/** The output paths derivation `drv` (an SQL expression) uses from its inputs, with canonical NAR hashes where known. */
export function inputOutputs(drv: string): string {
  return `SELECT o.out_path, o.nar_hash
            FROM derivation_inputs di
            JOIN derivation_outputs o ON o.drv_path = di.input_drv_path AND o.output_name = ANY(di.output_names)
           WHERE di.drv_path = ${drv} AND o.out_path IS NOT NULL`;
}

/** What a builder needs from the input outputs: their paths, and canonical NAR hashes where known. */
export function toBuildInputs(rows: Array<{ out_path: string; nar_hash: string | null }>): BuildInputs {
  const canonicalNarHashes: Record<string, NarHash> = {};
  // Written by recordBuild from a builder's NarHash, so already in the one form.
  for (const row of rows) if (row.nar_hash) canonicalNarHashes[row.out_path] = row.nar_hash as NarHash;
  return { inputPaths: rows.map((row) => row.out_path), canonicalNarHashes };
}

/** The columns `inputs` and `limits` of derivation `drv` (an SQL expression), as `toBuilderInputs` reads them. */
export function builderInputColumns(drv: string): string {
  return `(SELECT json_build_object('timeoutSeconds', d.timeout_seconds, 'maxSilentSeconds', d.max_silent_seconds)
             FROM derivations d WHERE d.drv_path = ${drv}
              AND (d.timeout_seconds IS NOT NULL OR d.max_silent_seconds IS NOT NULL)) AS limits,
          (SELECT json_agg(i ORDER BY i.out_path) FROM (${inputOutputs(drv)}) i) AS inputs`;
}

/** What `builderInputColumns` selected. */
export interface BuilderInputRow {
  limits: { timeoutSeconds: number | null; maxSilentSeconds: number | null } | null;
  /** Output paths used from the inputs, with their canonical NAR hashes when known. */
  inputs: Array<{ out_path: string; nar_hash: string | null }> | null;
}

/** A builder's inputs and the job's limits from the columns of `builderInputColumns`. */
export function toBuilderInputs(row: BuilderInputRow): BuildInputs {
  const inputs = toBuildInputs(row.inputs ?? []);
  if (row.limits) {
    inputs.limits = {
      ...(row.limits.timeoutSeconds ? { timeoutSeconds: row.limits.timeoutSeconds } : {}),
      ...(row.limits.maxSilentSeconds ? { maxSilentSeconds: row.limits.maxSilentSeconds } : {}),
    };
  }
  return inputs;
}
