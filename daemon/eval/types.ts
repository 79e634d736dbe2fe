/**
 * Types of the evaluation engine.
 *
 * Glossary:
 * - eval: one run of the evaluator over a source (a flake or a `.nix` file).
 * - attr: a dotted attribute path naming one job, e.g. `checks.x86_64-linux.greeting`;
 *   components containing a dot are double-quoted, as nix-eval-jobs prints them.
 * - job: an attribute whose value is a derivation; it becomes a `.drv` in the store.
 * - derivation: the `.drv` file a job instantiates to; its outputs are what gets built.
 * - per-attribute error: one attribute failed to evaluate; the others still count.
 * - whole-eval failure: the source itself could not be evaluated (no jobs at all).
 */
import type { Derivation } from '../core/derivation.ts';

/** One successfully evaluated job, in nix-eval-jobs' JSON line shape. */
export interface EvalJob {
  /** Dotted attribute path from the root of the source (flake outputs or the file's value). */
  attr: string;
  attrPath: string[];
  drvPath: string;
  /** The derivation's `name` attribute. */
  name: string;
  /** The derivation's platform (`x86_64-linux`). */
  system: string;
  /** Output name → output store path. */
  outputs: Record<string, string>;
  /** From the derivation's `requiredSystemFeatures` (empty when it sets none). */
  requiredSystemFeatures: string[];
  /** Input derivation path → output names used from it, sorted as Nix stores them. */
  inputDrvs: Record<string, string[]>;
  /** What the job's `meta` says that a CI shows or obeys; absent when it says none of it. */
  meta?: JobMeta;
  /** For an aggregate job (`_hydraAggregate = true`): its constituents as the expression lists them. */
  aggregate?: AggregateSpec;
  /** For an aggregate job, once resolved: the jobs (or bare derivations) whose results it stands for. */
  constituents?: Constituent[];
}

/** The parts of a job's `meta` harmonia-ci uses. */
export interface JobMeta {
  description?: string;
  /** Names (or e-mail addresses, or forge handles) of the maintainers. */
  maintainers?: string[];
  /** SPDX identifiers or short names of the licenses. */
  license?: string[];
  /** `meta.timeout`: wall-clock seconds the build may take (bounded by the server's limit). */
  timeout?: number;
  /** `meta.maxSilent`: seconds the build may print nothing (bounded by the server's limit). */
  maxSilent?: number;
}

/** An aggregate's constituents as evaluated: derivations, and names of other jobs. */
export interface AggregateSpec {
  drvs: string[];
  names: string[];
}

/** One resolved constituent of an aggregate: the job it names, or a derivation that is no job. */
export interface Constituent {
  /** The constituent's job attribute; null for a derivation that is not itself a job. */
  attr: string | null;
  drvPath: string;
}

/** One attribute that failed to evaluate: nix-eval-jobs' error line shape. */
export interface EvalJobError {
  attr: string;
  attrPath: string[];
  /** Nix's error message, ANSI escapes removed. */
  error: string;
}

/** One line of the job stream. */
export type EvalJobLine = EvalJob | EvalJobError;

/** What to evaluate. */
export type EvalSource =
  /** A flake reference: `path:/abs/dir`, `/abs/dir`, `git+file:///repo?rev=…`, `github:o/r`. */
  | { kind: 'flake'; ref: string }
  /** A `.nix` file evaluating to an attribute set of jobs, or a function returning one. */
  | { kind: 'file'; path: string };

/** Which implementation evaluates: nix-eval-jobs when installed, else the built-in one. */
export type EvaluatorChoice = 'auto' | 'nix-eval-jobs' | 'builtin';

/** Options of evaluateJobs. */
export interface EvaluateJobsOptions {
  source: EvalSource;
  /** Attribute paths to evaluate. Default: `["checks"]` for flakes, the whole value for files. */
  attrs?: string[];
  /** Allow import-from-derivation. Default true; always off when `restricted`. */
  allowIfd?: boolean;
  /**
   * Untrusted code (a pull request from outside): `restrict-eval` with no `allowed-uris`, no
   * import-from-derivation, no access tokens or netrc, a private empty HOME, git without system or
   * user configuration, and `memoryLimitBytes` per process. `extraEnv` still applies.
   */
  restricted?: boolean;
  /** Address-space limit (`ulimit -v`) of every evaluation process. Default: none. */
  memoryLimitBytes?: number;
  /** Wall-clock limit of the whole evaluation. Default: none. */
  timeoutMs?: number;
  /** Parallel evaluation processes. Default: the number of CPUs. */
  workers?: number;
  /**
   * Most jobs one process of the built-in evaluator instantiates (default 5,000): a bound on its
   * memory; more jobs than workers × this take more processes, each walking the source again.
   */
  maxJobsPerProcess?: number;
  signal?: AbortSignal;
  /** Called once per line, in order; awaited, so a slow consumer slows the evaluator down. */
  onJob: (line: EvalJobLine) => void | Promise<void>;
  /**
   * Enter nested attribute sets even without `recurseForDerivations = true`.
   * Default: true for flakes (their `checks.<system>.<name>` and `hydraJobs.<job>.<system>`
   * are plain nested sets, as `nix-eval-jobs --force-recurse` treats them), false for files.
   */
  forceRecurse?: boolean;
  /** Nix settings passed as `--option name value` (e.g. `substituters: ''` offline). */
  nixOptions?: Record<string, string>;
  /** Variables added to the minimal environment of the Nix subprocesses. */
  extraEnv?: Record<string, string>;
  /** Directory for nix-eval-jobs' `--gc-roots-dir`. Default: a temporary directory. */
  gcRootsDir?: string;
  evaluator?: EvaluatorChoice;
  /**
   * Filled with the parsed \`.drv\` of every job as it is read, for a planner in the same process,
   * which would otherwise read and parse the same files again.
   */
  derivations?: Map<string, Derivation>;
}

/** What evaluateJobs reports once every line has been delivered. */
export interface EvaluateJobsResult {
  evaluator: 'nix-eval-jobs' | 'builtin';
  jobs: number;
  errors: number;
}

/** True when the line reports a per-attribute error. */
export function isEvalJobError(line: EvalJobLine): line is EvalJobError {
  return 'error' in line;
}
