/**
 * The built-in evaluator, used where nix-eval-jobs is not installed. It runs walk.nix through
 * `nix eval` in two phases: list the job attributes, then instantiate them in parallel chunks.
 * Errors stay per attribute: `throw` and `assert` are caught inside Nix (tryEval); any other
 * error fails its whole subprocess, and the work is split until the failing attribute is
 * alone, so it alone gets an error line.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatAttrPath } from './attr-path.ts';
import { completeJob } from './derivation-file.ts';
import { EvaluationFailedError } from './errors.ts';
import { normalizeMeta } from './job-meta.ts';
import { createLimiter } from './limiter.ts';
import { nixString, runNix } from './nix.ts';
import type { NixContext, NixOutcome } from './nix.ts';
import { evalArgs } from './source.ts';
import type { EvalRoot } from './source.ts';
import type { EvalJobLine } from './types.ts';

const WALK_PROGRAM = readFileSync(new URL('./walk.nix', import.meta.url), 'utf8');

/** Most attributes instantiated by one subprocess, and most bytes of attribute paths in its command line. */
const MAX_CHUNK_ATTRS = 500;
const MAX_CHUNK_BYTES = 32 * 1024;

const walkResult = z.object({
  root: z.enum(['job', 'attrs', 'skip', 'failed']),
  jobs: z.array(z.object({ path: z.array(z.string()), failed: z.boolean() })),
});
const probeResult = z.object({ kind: z.enum(['job', 'attrs', 'skip']), names: z.array(z.string()) });
const instantiateResult = z.array(
  z.object({
    drvPath: z.string(),
    name: z.string(),
    meta: z.unknown(),
    aggregate: z.object({ drvs: z.array(z.string()), names: z.array(z.string()) }).nullable(),
  }),
);

type Request = { op: 'walk' | 'probe'; path: string[] } | { op: 'instantiate'; paths: string[][] };

/** Inputs of the built-in evaluator for one selected attribute. */
export interface BuiltinEvaluation {
  ctx: NixContext;
  root: EvalRoot;
  /** The selected attribute (e.g. `['checks']`); reported paths start with it. */
  select: string[];
  forceRecurse: boolean;
  workers: number;
  emit: (line: EvalJobLine) => Promise<void>;
}

/** How Nix says that it could not talk to its store, as opposed to an error in the expression. */
const STORE_UNREACHABLE = /cannot open connection to remote store|cannot connect to socket at|Connection reset by peer/;
const STORE_TRIES = 3;

/** Evaluates every job under the selected attribute, emitting one line per job or failed attribute. */
export async function evaluateBuiltin(evaluation: BuiltinEvaluation): Promise<void> {
  const { ctx, root, select, forceRecurse, emit } = evaluation;
  const limit = createLimiter(Math.max(1, evaluation.workers));
  const selectLabel = select.length === 0 ? 'the top-level value' : `attribute '${formatAttrPath(select)}'`;

  const request = async (req: Request): Promise<NixOutcome> => {
    const program =
      `(${WALK_PROGRAM}\n) { root = ${root.expr}; select = builtins.fromJSON ${nixString(JSON.stringify(select))}; ` +
      `forceRecurse = ${String(forceRecurse)}; request = builtins.fromJSON ${nixString(JSON.stringify(req))}; }`;
    // A store that cannot be reached is no error of the attribute: try again, then fail the whole
    // evaluation (its activity is retried) rather than record a job as broken.
    for (let attempt = 1; ; attempt++) {
      const outcome = await limit(() => runNix(ctx, evalArgs(root, program)));
      if (outcome.ok || !STORE_UNREACHABLE.test(outcome.message)) return outcome;
      if (attempt >= STORE_TRIES) {
        throw new Error(
          `the evaluation cannot reach its Nix store (${outcome.message.trim().split('\n')[0]}): check that the nix-daemon runs (NIX_REMOTE, NIX_DAEMON_SOCKET_PATH)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  };
  const errorLine = (path: string[], message: string): Promise<void> => {
    const attrPath = [...select, ...path];
    return emit({ attr: formatAttrPath(attrPath), attrPath, error: message });
  };
  const rootFailure = (message: string): EvaluationFailedError =>
    new EvaluationFailedError(`cannot evaluate ${selectLabel} of ${root.label}`, message);
  const notJobs = (): EvaluationFailedError =>
    new EvaluationFailedError(`${selectLabel} of ${root.label} is neither a derivation nor an attribute set`, '');

  const jobs: string[][] = [];
  // Attributes whose `throw` the walk already caught: each gets its own process for its message.
  const failing: string[][] = [];

  // Node by node, for subtrees whose one-process walk failed.
  const probe = async (path: string[]): Promise<void> => {
    const outcome = await request({ op: 'probe', path });
    if (!outcome.ok) {
      if (path.length === 0) throw rootFailure(outcome.message);
      return errorLine(path, outcome.message);
    }
    const { kind, names } = probeResult.parse(JSON.parse(outcome.stdout));
    if (kind === 'job') jobs.push(path);
    else if (kind === 'attrs') await Promise.all(names.map((name) => list([...path, name])));
    else if (path.length === 0) throw notJobs();
  };

  const list = async (path: string[]): Promise<void> => {
    const outcome = await request({ op: 'walk', path });
    if (!outcome.ok) return probe(path);
    const result = walkResult.parse(JSON.parse(outcome.stdout));
    if (path.length === 0 && result.root === 'failed') return probe(path);
    if (path.length === 0 && result.root === 'skip') throw notJobs();
    for (const job of result.jobs) (job.failed ? failing : jobs).push(job.path);
  };

  const instantiate = async (paths: string[][]): Promise<void> => {
    const outcome = await request({ op: 'instantiate', paths });
    if (outcome.ok) {
      const results = instantiateResult.parse(JSON.parse(outcome.stdout));
      for (const [i, path] of paths.entries()) {
        const result = results[i];
        if (result === undefined) throw new EvaluationFailedError(`the evaluator returned ${results.length} results for ${paths.length} attributes`, '');
        const meta = normalizeMeta(result.meta);
        await emit(await completeJob([...select, ...path], result.drvPath, result.name, { ...(meta ? { meta } : {}), ...(result.aggregate ? { aggregate: result.aggregate } : {}) }));
      }
      return;
    }
    const [first] = paths;
    if (paths.length === 1 && first !== undefined) return errorLine(first, outcome.message);
    const half = Math.ceil(paths.length / 2);
    await Promise.all([instantiate(paths.slice(0, half)), instantiate(paths.slice(half))]);
  };

  await list([]);
  await Promise.all([...chunk(jobs, evaluation.workers), ...failing.map((path) => [path])].map(instantiate));
}

/** Splits the jobs into about two chunks per worker, bounded in count and command-line size. */
function chunk(jobs: string[][], workers: number): string[][][] {
  const target = Math.min(MAX_CHUNK_ATTRS, Math.max(1, Math.ceil(jobs.length / (2 * Math.max(1, workers)))));
  const chunks: string[][][] = [];
  let current: string[][] = [];
  let bytes = 0;
  for (const path of jobs) {
    const size = JSON.stringify(path).length;
    if (current.length > 0 && (current.length >= target || bytes + size > MAX_CHUNK_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(path);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
