/**
 * Planning: from the jobs' derivations, walk down the derivation graph and keep what must be built
 * — a derivation whose outputs are not all valid, in the local store or the binary cache. Like
 * Nix's query-missing, the walk stops at derivations whose outputs are present: their inputs are
 * never needed. Runs where the evaluation ran, since it reads the `.drv` files from the local store.
 */
import { readFileSync } from 'node:fs';
import type { Pool, PoolClient } from 'pg';
import { parseDerivation, type Derivation } from '../../daemon/core/derivation.ts';
import { parseStorePath } from '../../daemon/core/store-path.ts';
import { requiredSystemFeatures } from '../../daemon/eval/job-line.ts';

/** Which of the given store paths are valid somewhere we can take them from. */
export type ValidityCheck = (paths: string[]) => Promise<Set<string>>;

export interface PlanResult {
  /** Derivations that need a build. */
  needed: Set<string>;
  /** Every derivation read, needed or not (jobs and inputs of needed ones). */
  derivations: Map<string, Derivation>;
}

const CHUNK = 500;

/**
 * Walks the graph breadth-first, one validity query per layer. `known` holds derivations already
 * parsed (the evaluation's jobs): only the others are read.
 */
export async function planMissingBuilds(jobDrvs: Iterable<string>, isValid: ValidityCheck, known?: ReadonlyMap<string, Derivation>): Promise<PlanResult> {
  const derivations = new Map<string, Derivation>();
  const needed = new Set<string>();
  let frontier = [...new Set(jobDrvs)];
  while (frontier.length > 0) {
    for (let i = 0; i < frontier.length; i += CHUNK) {
      // Synchronous reads, a chunk between yields: a .drv is small, and an async read's trip
      // through the thread pool costs several times the read itself.
      for (const path of frontier.slice(i, i + CHUNK)) derivations.set(path, known?.get(path) ?? parseDerivation(readFileSync(path, 'utf8')));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const outputs = frontier.flatMap((path) => [...derivations.get(path)!.outputs.values()].map((o) => o.path));
    const valid = await isValid(outputs.filter((p) => p !== ''));
    const next = new Set<string>();
    for (const path of frontier) {
      const drv = derivations.get(path)!;
      if ([...drv.outputs.values()].every((o) => o.path !== '' && valid.has(o.path))) continue;
      needed.add(path);
      for (const input of drv.inputDrvs.keys()) if (!derivations.has(input)) next.add(input);
    }
    frontier = [...next];
  }
  return { needed, derivations };
}

/** The derivation's `name`, from its environment or, failing that, its store path. */
export function derivationName(drvPath: string, drv: Derivation): string {
  return drv.env.get('name') ?? parseStorePath(drvPath).name.replace(/\.drv$/, '');
}

/** Writes the plan: layer-1 rows for every derivation read, a build row per needed one, the eval's share. */
export async function recordPlan(db: Pool | PoolClient, evalId: string, plan: PlanResult, jobDrvs: Set<string>): Promise<void> {
  const all = [...plan.derivations.entries()];
  // The jobs' own rows were written with their attributes (insertAttrs, with their per-job limits).
  const inputs = all.filter(([path]) => !jobDrvs.has(path));
  await db.query(
    `INSERT INTO derivations (drv_path, name, system, required_system_features)
     SELECT d.path, d.name, d.system, ARRAY(SELECT json_array_elements_text(d.features::json))
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS d(path, name, system, features)
     ON CONFLICT (drv_path) DO NOTHING`,
    [
      inputs.map(([path]) => path),
      inputs.map(([path, drv]) => derivationName(path, drv)),
      inputs.map(([, drv]) => drv.platform),
      inputs.map(([, drv]) => JSON.stringify(requiredSystemFeatures(drv))),
    ],
  );
  const outputs = all.flatMap(([path, drv]) => [...drv.outputs].map(([name, o]) => [path, name, o.path || null] as const));
  await db.query(
    `INSERT INTO derivation_outputs (drv_path, output_name, out_path)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
     ON CONFLICT (drv_path, output_name) DO NOTHING`,
    [outputs.map((o) => o[0]), outputs.map((o) => o[1]), outputs.map((o) => o[2])],
  );
  const needed = [...plan.needed];
  const edges = needed.flatMap((path) =>
    [...plan.derivations.get(path)!.inputDrvs].map(([input, names]) => [path, input, JSON.stringify(names)] as const),
  );
  await db.query(
    `INSERT INTO derivation_inputs (drv_path, input_drv_path, output_names)
     SELECT e.drv, e.input, ARRAY(SELECT json_array_elements_text(e.names::json))
       FROM unnest($1::text[], $2::text[], $3::text[]) AS e(drv, input, names)
     ON CONFLICT DO NOTHING`,
    [edges.map((e) => e[0]), edges.map((e) => e[1]), edges.map((e) => e[2])],
  );
  // A build that once succeeded but whose outputs are gone everywhere must run again.
  await db.query(
    `INSERT INTO build_jobs (drv_path) SELECT unnest($1::text[])
     ON CONFLICT (drv_path) DO UPDATE
       SET status = 'pending', workflow_id = NULL, finished_at = NULL, updated_at = now()
     WHERE build_jobs.status = 'succeeded'`,
    [needed],
  );
  await db.query(
    `INSERT INTO evaluation_builds (eval_id, build_id)
     SELECT $1, id FROM build_jobs WHERE drv_path = ANY($2::text[])
     ON CONFLICT DO NOTHING`,
    [evalId, needed],
  );
  const cached = [...jobDrvs].filter((path) => !plan.needed.has(path)).length;
  await db.query('UPDATE evaluations SET cached_jobs = $2 WHERE id = $1', [evalId, cached]);
}
