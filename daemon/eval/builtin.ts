/**
 * The built-in evaluator, used where nix-eval-jobs is not installed. It runs walk.nix through
 * `nix eval`: one process per worker walks the selected attribute and instantiates its part of
 * the jobs (a contiguous range of the walk's order, so jobs that share dependencies mostly
 * share a process, which evaluates them once). Errors stay per attribute: `throw` and `assert`
 * are caught inside Nix (tryEval); any other error fails its whole subprocess, and its range is
 * split until the failing attribute is alone, so it alone gets an error line. When even the
 * walk fails, the tree is walked subtree by subtree and the jobs are instantiated in chunks.
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

/** Most attributes instantiated by one subprocess given their paths, and most bytes of those paths in its command line. */
const MAX_CHUNK_ATTRS = 500;
const MAX_CHUNK_BYTES = 32 * 1024;
/** Most jobs one subprocess instantiates by range (walking the source itself) unless told otherwise: a bound on its memory. */
const MAX_RANGE_JOBS = 5000;

const walkResult = z.object({
  root: z.enum(['job', 'attrs', 'skip', 'failed']),
  jobs: z.array(z.object({ path: z.array(z.string()), failed: z.boolean() })),
});
const jobResult = z.object({
  drvPath: z.string(),
  name: z.string(),
  meta: z.unknown(),
  aggregate: z.object({ drvs: z.array(z.string()), names: z.array(z.string()) }).nullable(),
});
const partResult = walkResult.extend({ from: z.number().int().nonnegative(), to: z.number().int().nonnegative(), results: z.array(jobResult) });
const rangeResult = z.object({ paths: z.array(z.array(z.string())), results: z.array(jobResult) });
const probeResult = z.object({ kind: z.enum(['job', 'attrs', 'skip']), names: z.array(z.string()) });
const instantiateResult = z.array(jobResult);

type Request =
  | { op: 'walk' | 'probe'; path: string[] }
  | { op: 'instantiate'; paths: string[][] }
  | { op: 'part'; index: number; parts: number; max: number }
  | { op: 'range'; from: number; to: number };

/** Inputs of the built-in evaluator for one selected attribute. */
export interface BuiltinEvaluation {
  ctx: NixContext;
  root: EvalRoot;
  /** The selected attribute (e.g. `['checks']`); reported paths start with it. */
  select: string[];
  forceRecurse: boolean;
  workers: number;
  /** Most jobs one process instantiates by range (default MAX_RANGE_JOBS). */
  maxJobsPerProcess?: number;
  emit: (line: EvalJobLine) => Promise<void>;
}

/** How Nix says that it could not talk to its store, as opposed to an error in the expression. */
const STORE_UNREACHABLE = /cannot open connection to remote store|cannot connect to socket at|Connection reset by peer/;
const STORE_TRIES = 3;

/** Evaluates every job under the selected attribute, emitting one line per job or failed attribute. */
export async function evaluateBuiltin(evaluation: BuiltinEvaluation): Promise<void> {
  const { ctx, root, select, forceRecurse, emit } = evaluation;
  const limit = createLimiter(Math.max(1, evaluation.workers));
  const maxRange = Math.max(1, evaluation.maxJobsPerProcess ?? MAX_RANGE_JOBS);
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

  const emitResults = async (paths: string[][], results: z.infer<typeof jobResult>[]): Promise<void> => {
    if (results.length !== paths.length) throw new EvaluationFailedError(`the evaluator returned ${results.length} results for ${paths.length} attributes`, '');
    for (const [i, path] of paths.entries()) {
      const result = results[i]!;
      const meta = normalizeMeta(result.meta);
      await emit(completeJob([...select, ...path], result.drvPath, result.name, { ...(meta ? { meta } : {}), ...(result.aggregate ? { aggregate: result.aggregate } : {}) }, ctx.derivations));
    }
  };

  const instantiate = async (paths: string[][]): Promise<void> => {
    const outcome = await request({ op: 'instantiate', paths });
    if (outcome.ok) return emitResults(paths, instantiateResult.parse(JSON.parse(outcome.stdout)));
    const [first] = paths;
    if (paths.length === 1 && first !== undefined) return errorLine(first, outcome.message);
    const half = Math.ceil(paths.length / 2);
    await Promise.all([instantiate(paths.slice(0, half)), instantiate(paths.slice(half))]);
  };

  /** Jobs `from` to `to` of `good` (the walk's jobs in order), split in halves while a process fails. */
  const instantiateRange = async (good: string[][], from: number, to: number): Promise<void> => {
    const outcome = await request({ op: 'range', from, to });
    if (outcome.ok) {
      const { paths, results } = rangeResult.parse(JSON.parse(outcome.stdout));
      if (JSON.stringify(paths) !== JSON.stringify(good.slice(from, to))) throw sourceChanged();
      return emitResults(paths, results);
    }
    if (to - from === 1) return errorLine(good[from]!, outcome.message);
    const half = from + Math.ceil((to - from) / 2);
    await Promise.all([instantiateRange(good, from, half), instantiateRange(good, half, to)]);
  };

  // Fast path: each worker's process walks the whole selection and instantiates its part; a part's
  // jobs are delivered as soon as its process is done, while the others still run.
  const parts = Math.max(1, evaluation.workers);
  const answered: z.infer<typeof partResult>[] = [];
  const jobsOf = (part: z.infer<typeof partResult>): string[][] => part.jobs.filter((job) => !job.failed).map((job) => job.path);
  await Promise.all(
    Array.from({ length: parts }, async (_, index) => {
      const outcome = await request({ op: 'part', index, parts, max: maxRange });
      if (!outcome.ok) return;
      const part = partResult.parse(JSON.parse(outcome.stdout));
      answered.push(part);
      if (part.root !== 'attrs' && part.root !== 'job') return;
      const own = jobsOf(part);
      if (part.to < part.from || part.to > own.length) throw sourceChanged();
      await emitResults(own.slice(part.from, part.to), part.results);
    }),
  );
  const [walked] = answered;
  if (walked === undefined || walked.root === 'failed') {
    // No process could walk the selection: find the jobs subtree by subtree, then instantiate them.
    await list([]);
    await Promise.all([...chunk(jobs, evaluation.workers), ...failing.map((path) => [path])].map(instantiate));
    return;
  }
  if (walked.root === 'skip') throw notJobs();
  if (answered.some((part) => JSON.stringify(part.jobs) !== JSON.stringify(walked.jobs))) throw sourceChanged();
  const good = jobsOf(walked);
  // What the failed parts and the parts beyond the bound left: by range, at most maxRange a process.
  const covered = answered.map((part): [number, number] => [part.from, part.to]).sort((a, b) => a[0] - b[0]);
  const work: Promise<void>[] = [];
  let next = 0;
  for (const [from, to] of [...covered, [good.length, good.length] as [number, number]]) {
    for (let start = next; start < from; start += maxRange) work.push(instantiateRange(good, start, Math.min(from, start + maxRange)));
    next = Math.max(next, to);
  }
  for (const job of walked.jobs) if (job.failed) work.push(instantiate([job.path]));
  await Promise.all(work);
}

/** A plain file is read anew by every process: if it changed meanwhile, their walks disagree. */
function sourceChanged(): EvaluationFailedError {
  return new EvaluationFailedError('the source changed while it was being evaluated (its processes found different jobs); evaluate it again', '');
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
