/**
 * The contract between workflows and activities, grouped by the queue that runs them.
 * Workflows import these with `import type`; the factories in this folder implement them.
 */
import type {
  BuildResult,
  BuildStatus,
  BuiltOutput,
  EvalProgress,
  EvalSettings,
  EvalStatus,
  JobsetSource,
  PushEvent,
} from '../workflows/types.ts';

export interface StartEvalRequest {
  projectId: string;
  ref: string;
  push: PushEvent;
  /** Evaluate again even though this commit was evaluated (re-evaluate): the eval's results are reset. */
  fresh?: boolean;
}

export interface StartedEval {
  evalId: string;
  settings: EvalSettings;
  /** Set when a succeeded eval of the project had the same tree: results were copied. */
  skippedBecauseOf?: string;
  /** The commit was already evaluated on this ref (a redelivered webhook): nothing to start. */
  existed?: boolean;
}

export interface AdvanceEvalRequest {
  evalId: string;
  evalWorkflowId: string;
  /** Most build workflows this eval keeps open at once. */
  window: number;
}

/** Activities on the coordinator queue: PostgreSQL, Temporal starts, forge reports. */
export interface CoordinatorActivities {
  /** Records a new eval for a push (idempotent on project, commit and ref). */
  createEval(request: StartEvalRequest): Promise<StartedEval>;
  setEvalStatus(evalId: string, status: EvalStatus, error?: string): Promise<void>;
  /** Starts builds whose inputs are done, marks dep-failed ones, and counts. */
  advanceEval(request: AdvanceEvalRequest): Promise<EvalProgress>;
  /** Puts the given failed builds and their dep-failed dependents back to pending. */
  resetBuilds(evalId: string, drvPaths: string[] | 'failed'): Promise<number>;
  /** Tells the eval's unfinished builds that this eval no longer wants them. */
  releaseEvalBuilds(evalId: string, evalWorkflowId: string): Promise<void>;
  /**
   * Sends the eval's `harmonia-ci/nix-eval` and `harmonia-ci/nix-build` commit statuses to its
   * forge, computed from PostgreSQL (nothing for local projects). Safe to repeat.
   */
  reportEvalStatus(evalId: string): Promise<void>;
  /** The latest eval of a ref, for rebuild-failed. */
  latestEval(projectId: string, ref: string): Promise<{ evalId: string; sha: string; source: JobsetSource } | undefined>;

  /** What a build workflow finds when it starts: a result to repeat, or work to do. */
  beginBuild(drvPath: string, rebuild: boolean): Promise<{ result?: BuildResult }>;
  /** The first failed input among the derivations this one waits for, if any. */
  checkBuildInputs(drvPath: string): Promise<{ ready: boolean; rootCause?: string }>;
  recordBuild(update: BuildRecord): Promise<void>;
  /** What a builder needs besides the `.drv`: input paths and their canonical NAR hashes. */
  describeBuildInputs(drvPath: string): Promise<BuildInputs>;
}

export interface BuildInputs {
  /** Output paths the derivation uses from its input derivations. */
  inputPaths: string[];
  /** Canonical NAR hash (`sha256:…`) of each input path already uploaded once. */
  canonicalNarHashes: Record<string, string>;
}

export interface BuildRecord {
  drvPath: string;
  status: BuildStatus;
  attempt?: number;
  builder?: string;
  rootCause?: string;
  error?: string;
  outputs?: BuiltOutput[];
}

export interface EvaluateRequest {
  evalId: string;
  source: JobsetSource;
  settings: EvalSettings;
}

export interface EvaluateOutcome {
  ok: boolean;
  error?: string;
  jobs: number;
  attrErrors: number;
  /** Jobs left out because no builder serves their system. */
  otherSystems: number;
  /** Derivations that need a build. */
  toBuild: number;
  /** Derivations whose outputs were already valid in the cache or the local store. */
  cached: number;
}

/** Activities on the eval queue, on a host with a Nix store. */
export interface EvaluatorActivities {
  /**
   * Runs the evaluator, streaming jobs into PostgreSQL, then plans on the same host (it holds
   * the `.drv` files): records every derivation of the jobs' closure and which need a build.
   * A failed evaluation leaves no partial results.
   */
  evaluate(request: EvaluateRequest): Promise<EvaluateOutcome>;
}

export interface BuildRequest extends BuildInputs {
  drvPath: string;
}

export interface BuildOutcome {
  /** `failed` and `timed-out` are the build's own doing: never retried automatically. */
  status: 'succeeded' | 'failed' | 'timed-out';
  /** The host that built, whose own queue must do the upload. */
  host: string;
  error?: string;
  outputs: BuiltOutput[];
}

/** Activities on builder queues. */
export interface BuilderActivities {
  buildDerivation(request: BuildRequest): Promise<BuildOutcome>;
}

/** Activities on a builder's own host queue. */
export interface HostActivities {
  /** Uploads the outputs that were just built here and has the signer publish them. */
  publishOutputs(request: { drvPath: string; outputs: BuiltOutput[] }): Promise<void>;
}
