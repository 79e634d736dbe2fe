/**
 * `harmonia-ci eval-jobs <flake-or-file>`: evaluates jobs like nix-eval-jobs and prints one
 * JSON line per job or failed attribute. Exit status 1 only when the evaluation as a whole
 * failed; attributes that failed alone are error lines, and the command still succeeds.
 */
import type { Command } from 'commander';
import { parseDuration } from '../../config/units.ts';
import { EvaluationAbortedError, EvaluationError, evaluateJobs, sourceFromArgument } from '../../daemon/eval/index.ts';
import type { EvalJobLine, EvaluatorChoice } from '../../daemon/eval/index.ts';
import { CliError } from '../errors.ts';

interface EvalJobsOptions {
  attr: string[];
  workers?: string;
  ifd: boolean;
  timeout: string;
  nixOption: string[];
  evaluator: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseNixOptions(pairs: string[]): Record<string, string> {
  const options: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--nix-option '${pair}' is not name=value; write e.g. --nix-option substituters=`);
    options[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return options;
}

/** Writes a line to stdout, waiting when the pipe is full so a slow reader slows the evaluation. */
function printLine(line: EvalJobLine): Promise<void> | undefined {
  if (process.stdout.write(`${JSON.stringify(line)}\n`)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      process.stdout.off('drain', done);
      process.stdout.off('close', done);
      resolve();
    };
    process.stdout.on('drain', done);
    process.stdout.on('close', done);
  });
}

async function runEvalJobs(target: string, options: EvalJobsOptions): Promise<void> {
  const timeoutMs = parseDuration(options.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new CliError(`--timeout '${options.timeout}' is not a duration such as 1h, 10m or 90s`);
  const workers = options.workers === undefined ? undefined : Number(options.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) throw new CliError(`--workers '${options.workers ?? ''}' must be a whole number of at least 1`);
  if (!['auto', 'builtin', 'nix-eval-jobs'].includes(options.evaluator)) throw new CliError(`--evaluator must be auto, builtin or nix-eval-jobs, not '${options.evaluator}'`);

  const controller = new AbortController();
  const cancel = (): void => controller.abort(new Error('interrupted'));
  // A reader that went away (`| head`) ends the evaluation instead of crashing on EPIPE.
  const readerGone = (): void => controller.abort(new Error('stdout was closed'));
  process.once('SIGINT', cancel);
  process.once('SIGTERM', cancel);
  process.stdout.on('error', readerGone);
  // `flake#attr` selects like -A, as with nix and nix-eval-jobs.
  const hash = target.indexOf('#');
  const attrs = hash < 0 ? options.attr : [...options.attr, target.slice(hash + 1)];
  try {
    const result = await evaluateJobs({
      source: await sourceFromArgument(hash < 0 ? target : target.slice(0, hash)),
      attrs: attrs.length > 0 ? attrs : undefined,
      allowIfd: options.ifd,
      timeoutMs,
      workers,
      signal: controller.signal,
      nixOptions: parseNixOptions(options.nixOption),
      evaluator: options.evaluator as EvaluatorChoice,
      onJob: printLine,
    });
    process.stderr.write(`evaluated ${result.jobs} jobs, ${result.errors} attributes failed (${result.evaluator} evaluator)\n`);
  } catch (error) {
    if (error instanceof EvaluationAbortedError) throw new CliError(error.message, 130);
    if (error instanceof EvaluationError) throw new CliError(error.message);
    throw error;
  } finally {
    process.off('SIGINT', cancel);
    process.off('SIGTERM', cancel);
    process.stdout.off('error', readerGone);
  }
}

/** Registers `eval-jobs`. */
export function registerEvalJobs(program: Command): void {
  program
    .command('eval-jobs')
    .description('evaluate the jobs of a flake or .nix file and print one nix-eval-jobs JSON line per job')
    .argument('<flake-or-file>', 'a flake reference (directory, path:…, github:…, optionally #attr) or a .nix file')
    .option('-A, --attr <attr>', 'attribute to evaluate, repeatable (default: checks for a flake, the whole file otherwise)', collect, [])
    .option('--workers <n>', 'parallel evaluation processes (default: number of CPUs)')
    .option('--no-ifd', 'refuse import-from-derivation')
    .option('--timeout <duration>', 'give up after this long, e.g. 1h, 10m, 90s', '1h')
    .option('--nix-option <name=value>', 'Nix setting for the evaluation, repeatable (e.g. substituters=)', collect, [])
    .option('--evaluator <which>', 'auto (nix-eval-jobs when installed), builtin or nix-eval-jobs', 'auto')
    .action((target: string, options: EvalJobsOptions) => runEvalJobs(target, options));
}
