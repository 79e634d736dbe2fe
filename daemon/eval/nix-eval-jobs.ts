/**
 * Running nix-eval-jobs (https://github.com/nix-community/nix-eval-jobs) and turning its
 * stdout into the job stream. Each job is completed from its `.drv`, so lines carry the same
 * fields as the built-in evaluator's whatever nix-eval-jobs version is installed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { formatAttrPath } from './attr-path.ts';
import { completeJob } from './derivation-file.ts';
import { EvaluationFailedError } from './errors.ts';
import { nixEvalJobsExtras, parseNixEvalJobsLine } from './job-line.ts';
import { nixErrorMessage, nixString, startTracked } from './nix.ts';
import type { NixContext } from './nix.ts';
import { normalizeFlakeRef } from './source.ts';
import type { EvalJobLine, EvalSource } from './types.ts';

/** Inputs of one nix-eval-jobs run over one selected attribute. */
export interface NixEvalJobsRun {
  ctx: NixContext;
  executable: string;
  source: EvalSource;
  select: string[];
  forceRecurse: boolean;
  workers: number;
  gcRootsDir?: string;
  emit: (line: EvalJobLine) => Promise<void>;
}

/** The positional part of the command line: `--flake ref#attr`, a file, or an expression selecting into a file. */
export function sourceArgs(source: EvalSource, select: string[]): string[] {
  if (source.kind === 'flake') {
    const ref = normalizeFlakeRef(source.ref);
    return ['--flake', select.length === 0 ? ref : `${ref}#${formatAttrPath(select)}`];
  }
  const path = resolve(source.path);
  if (select.length === 0) return [path];
  // The file's value is a function or a set; nix-eval-jobs only auto-calls the top level.
  const value = `(let v = import (/. + ${nixString(path)}); in if builtins.isFunction v then v { } else v)`;
  return ['--expr', `${value}.${select.map(nixString).join('.')}`];
}

const helpTexts = new Map<string, Promise<string>>();

/** The flags among `wanted` that the installed nix-eval-jobs lists in its `--help`. */
async function supportedFlags(executable: string, wanted: string[]): Promise<string[]> {
  let help = helpTexts.get(executable);
  if (help === undefined) {
    help = execa(executable, ['--help'], { reject: false, timeout: 30_000 }).then((r) => `${String(r.stdout)}\n${String(r.stderr)}`);
    helpTexts.set(executable, help);
  }
  const text = await help;
  return wanted.filter((flag) => new RegExp(`(^|\\s)${flag}(\\s|$|,)`, 'm').test(text));
}

/** Runs nix-eval-jobs once, emitting its lines with attribute paths prefixed by the selection. */
export async function evaluateWithNixEvalJobs(run: NixEvalJobsRun): Promise<void> {
  const { ctx, select, emit } = run;
  const gcRootsDir = run.gcRootsDir ?? (await mkdtemp(join(tmpdir(), 'harmonia-eval-roots-')));
  try {
    const args = [
      '--workers',
      String(Math.max(1, run.workers)),
      '--gc-roots-dir',
      gcRootsDir,
      ...ctx.optionArgs,
      '--option',
      'extra-experimental-features',
      'nix-command flakes',
      ...(run.forceRecurse ? ['--force-recurse'] : []),
      // `meta` (timeouts, description) and aggregates' constituents, where this version has them.
      ...(await supportedFlags(run.executable, ['--meta', '--constituents'])),
      // Plain files evaluate impurely, as with nix-instantiate and the built-in evaluator.
      ...(run.source.kind === 'file' ? ['--impure'] : []),
      ...sourceArgs(run.source, select),
    ];
    const proc = startTracked(ctx, run.executable, args);
    let rootError: string | undefined;
    for await (const text of createInterface({ input: proc.child.stdout, crlfDelay: Infinity })) {
      if (text.trim() === '') continue;
      const line = parseNixEvalJobsLine(text);
      const attrPath = [...select, ...line.attrPath];
      if ('error' in line) {
        if (line.attrPath.length === 0) rootError = line.error;
        else await emit({ attr: formatAttrPath(attrPath), attrPath, error: line.error });
      } else {
        await emit(completeJob(attrPath, line.drvPath, line.name, nixEvalJobsExtras(line), ctx.derivations));
      }
    }
    const exit = await proc.exited;
    ctx.signal.throwIfAborted();
    const label = select.length === 0 ? 'the top-level value' : `attribute '${formatAttrPath(select)}'`;
    if (rootError !== undefined) throw new EvaluationFailedError(`cannot evaluate ${label}`, rootError);
    if (exit.code !== 0) {
      const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
      throw new EvaluationFailedError(`nix-eval-jobs ${how} evaluating ${label}`, nixErrorMessage(proc.stderr()));
    }
  } finally {
    if (run.gcRootsDir === undefined) await rm(gcRootsDir, { recursive: true, force: true });
  }
}
