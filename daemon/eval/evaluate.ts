/** evaluateJobs: the evaluation engine's entry point, choosing nix-eval-jobs or the built-in evaluator. */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AggregateResolver } from './aggregates.ts';
import { parseAttrPath } from './attr-path.ts';
import { evaluateBuiltin } from './builtin.ts';
import { EvaluationAbortedError, EvaluationError, EvaluationTimeoutError } from './errors.ts';
import { explainErrorLine } from './job-line.ts';
import { evaluateWithNixEvalJobs } from './nix-eval-jobs.ts';
import { findExecutable, nixOptionArgs } from './nix.ts';
import type { NixContext } from './nix.ts';
import { minimalEnvironment, restrictedEnvironment } from './process.ts';
import type { TreeProcess } from './process.ts';
import { resolveRoot } from './source.ts';
import type { EvalJobLine, EvaluateJobsOptions, EvaluateJobsResult } from './types.ts';
import { isEvalJobError } from './types.ts';

/**
 * Evaluates the source's job attributes and calls `onJob` for every job and every failed
 * attribute. Resolves once all lines are delivered; rejects with EvaluationFailedError when
 * the source as a whole cannot be evaluated, EvaluationTimeoutError or EvaluationAbortedError
 * when stopped, in every case only after all its subprocesses are gone.
 */
export async function evaluateJobs(options: EvaluateJobsOptions): Promise<EvaluateJobsResult> {
  const { source, signal } = options;
  if (signal?.aborted) throw new EvaluationAbortedError(signal.reason);
  // A restricted evaluation gets a HOME of its own, empty, removed afterwards.
  const home = options.restricted ? await mkdtemp(join(tmpdir(), 'harmonia-eval-home-')) : undefined;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(new EvaluationAbortedError(signal?.reason));
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    options.timeoutMs === undefined ? undefined : setTimeout(() => controller.abort(new EvaluationTimeoutError(options.timeoutMs ?? 0)), options.timeoutMs);

  const ctx: NixContext = {
    env: home === undefined ? minimalEnvironment(options.extraEnv) : restrictedEnvironment(home, { ...fileSearchPath(options), ...options.extraEnv }),
    optionArgs: nixOptionArgs(options.nixOptions ?? {}, options.allowIfd ?? true, options.restricted ?? false),
    signal: controller.signal,
    live: new Set<TreeProcess>(),
    ...(options.memoryLimitBytes === undefined ? {} : { memoryLimitBytes: options.memoryLimitBytes }),
    ...(options.derivations === undefined ? {} : { derivations: options.derivations }),
  };
  const workers = Math.max(1, options.workers ?? availableParallelism());
  const forceRecurse = options.forceRecurse ?? source.kind === 'flake';
  const selections = (options.attrs ?? (source.kind === 'flake' ? ['checks'] : [''])).map(parseAttrPath);

  let jobs = 0;
  let errors = 0;
  // A consumer that never returns must not hold a stopped evaluation open.
  const stopped = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true }));
  stopped.catch(() => undefined);
  const emit = async (raw: EvalJobLine): Promise<void> => {
    controller.signal.throwIfAborted();
    const line = isEvalJobError(raw) ? explainErrorLine(raw) : raw;
    if (isEvalJobError(line)) errors += 1;
    else jobs += 1;
    await Promise.race([options.onJob(line), stopped]);
  };
  // Aggregates wait until every job is known: their constituents may name any of them.
  const aggregates = new AggregateResolver(selections);
  // Workers finish in any order; lines reach onJob one at a time.
  let delivery = Promise.resolve();
  const emitInOrder = (line: EvalJobLine): Promise<void> => (delivery = delivery.then(() => (aggregates.observe(line) ? undefined : emit(line))));

  try {
    const nixEvalJobs =
      options.evaluator === 'builtin' ? undefined : await findExecutable('nix-eval-jobs', ctx.env.PATH ?? '');
    if (options.evaluator === 'nix-eval-jobs' && nixEvalJobs === undefined) {
      throw new EvaluationError(`nix-eval-jobs is not on the evaluator's PATH (${ctx.env.PATH ?? ''}); install it or use the built-in evaluator`);
    }
    // Locked once, so every selection and worker sees the same source.
    const root = nixEvalJobs === undefined ? await resolveRoot(ctx, source) : undefined;
    for (const select of selections) {
      if (root !== undefined) {
        await evaluateBuiltin({ ctx, root, select, forceRecurse, workers, emit: emitInOrder, ...(options.maxJobsPerProcess ? { maxJobsPerProcess: options.maxJobsPerProcess } : {}) });
      } else if (nixEvalJobs !== undefined) {
        const run = { ctx, executable: nixEvalJobs, source, select, forceRecurse, workers, emit: emitInOrder };
        await evaluateWithNixEvalJobs(options.gcRootsDir === undefined ? run : { ...run, gcRootsDir: options.gcRootsDir });
      }
    }
    await delivery;
    for (const line of aggregates.resolve()) await emit(line);
    return { evaluator: nixEvalJobs === undefined ? 'builtin' : 'nix-eval-jobs', jobs, errors };
  } catch (error) {
    // A timeout or cancellation is reported as such, whatever error it caused in the workers.
    const reason = controller.signal.aborted ? (controller.signal.reason as unknown) : undefined;
    if (!controller.signal.aborted) controller.abort(error);
    await Promise.allSettled([...ctx.live].map((proc) => proc.exited));
    await delivery.catch(() => undefined);
    throw reason instanceof EvaluationError ? reason : error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (home !== undefined) await rm(home, { recursive: true, force: true });
  }
}

/**
 * Restricted mode reads only the store and the search path: a plain file's directory is put on
 * it so the file and its neighbours can be imported (a flake's own tree is in the store already).
 */
function fileSearchPath(options: EvaluateJobsOptions): Record<string, string> {
  return options.source.kind === 'file' ? { NIX_PATH: `source=${dirname(resolve(options.source.path))}` } : {};
}
