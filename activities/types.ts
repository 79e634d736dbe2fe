/**
 * The contract between workflows and activities, grouped by the queue that runs them.
 * Workflows import these with `import type`; the factories in this folder implement them.
 */
import type {
  BuildProduct,
  BuildResult,
  BuildStatus,
  BuiltOutput,
  EvalProgress,
  EvalSettings,
  EvalStatus,
  JobsetSource,
  PushEvent,
} from '../workflows/types.ts';
import type { UploadTarget } from '../cache/types.ts';
import type { NarHash } from '../daemon/core/hash.ts';

export interface StartEvalRequest {
  /** `projects.name`, e.g. `owner/repo`. */
  projectName: string;
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
  /** Also check that the build workflows the eval waits for still exist, and restart lost ones. */
  repair?: boolean;
}

/** Activities on the coordinator queue: PostgreSQL, Temporal starts, forge reports. */
/** What a builder tells the coordinator about itself with every heartbeat: its `nodes` row. */
export interface NodeHeartbeat {
  name: string;
  systems: string[];
  features: string[];
  maxJobs: number;
  version: string;
}

/** Coordinator activities behind the node workflow (builders hold no database credentials). */
export interface NodeActivities {
  /** Registers the builder or refreshes its row and last-seen time; says whether it is draining. */
  recordNodeHeartbeat(beat: NodeHeartbeat): Promise<{ draining: boolean }>;
  /** Sets or clears the draining flag; false when no node of that name is registered. */
  setNodeDraining(name: string, draining: boolean): Promise<boolean>;
  /** Stores the live tails of build logs a builder sent. */
  recordLogTails(tails: Array<{ drvPath: string; text: string }>): Promise<void>;
}

export interface CoordinatorActivities extends NodeActivities {
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
  /**
   * Reads a polled project's default branch head and signals it to the ref workflow like a webhook
   * push; returns the wait until the next poll, or null when the project no longer polls.
   */
  pollProject(projectName: string): Promise<{ intervalMs: number | null }>;
  /** The latest eval of a ref, for rebuild-failed. */
  latestEval(projectName: string, ref: string): Promise<{ evalId: string; sha: string; source: JobsetSource } | undefined>;

  /** What a build workflow finds when it begins: a final result to repeat, or what its builder needs. */
  beginBuild(drvPath: string): Promise<BuildStart>;
  /**
   * Whether a build's inputs are done, or which failed: for build workflows that began before
   * the eval alone gated on inputs (activities/coordinator/scheduler.ts).
   */
  checkBuildInputs(drvPath: string): Promise<{ ready: boolean; rootCause?: string }>;
  recordBuild(update: BuildRecord): Promise<void>;
  /**
   * Records a final result, starts at once what a success made ready in the subscribed evals
   * (scheduler.ts, `startReadyDependents`), and tells those evals by signal (one that has gone
   * away is skipped: it reads results from PostgreSQL). Returns the evals told.
   */
  finishBuild(update: BuildRecord, result: BuildResult, subscribers: string[]): Promise<string[]>;
  /** Tells evals that subscribed after the result was recorded; returns the evals told. */
  announceBuild(result: BuildResult, subscribers: string[]): Promise<string[]>;
  /** What a builder needs besides the `.drv`: input paths and their canonical NAR hashes. */
  describeBuildInputs(drvPath: string): Promise<BuildInputs>;
}

/** A final result a new run of a build workflow repeats instead of building again, or what its builder needs. */
export type BuildStart = { result: BuildResult; inputs?: undefined } | { result?: undefined; inputs: BuildInputs };

export interface BuildInputs {
  /** Output paths the derivation uses from its input derivations. */
  inputPaths: string[];
  /** Canonical NAR hash of each input path already uploaded once. */
  canonicalNarHashes: Record<string, NarHash>;
  /** The job's `meta.timeout` and `meta.maxSilent` in seconds, bounded on the builder by the server's limits. */
  limits?: { timeoutSeconds?: number; maxSilentSeconds?: number };
}

export interface BuildRecord {
  drvPath: string;
  status: BuildStatus;
  attempt?: number;
  builder?: string;
  rootCause?: string;
  error?: string;
  outputs?: BuiltOutput[];
  products?: BuildProduct[];
}

export interface EvaluateRequest {
  evalId: string;
  source: JobsetSource;
  settings: EvalSettings;
  /** Whose git credential fetches the source (`projects.git-credentials-dir`); absent in runs recorded before. */
  projectName?: string;
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
  /**
   * The `.drv` files and input sources of the builds that our cache lacked, staged on the evaluator
   * host `host` in batches: the eval workflow publishes them (workflows/publish.ts) before any build
   * starts, so that a builder with an empty store finds them in the cache.
   */
  closure?: { host: string; batches: StagedUpload[] };
  /** Paths of that closure published from the evaluator itself (a signer in its process). */
  closurePublished?: number;
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
  /**
   * `failed` and `timed-out` are the build's own doing: never retried automatically.
   * `failed-with-output` built and is published like a success, but marked itself failed.
   */
  status: 'succeeded' | 'failed' | 'timed-out' | 'failed-with-output';
  /** The host that built, whose own queue must do the upload. */
  host: string;
  error?: string;
  outputs: BuiltOutput[];
  /** Files the outputs offer for download, for a build that produced output. */
  products?: BuildProduct[];
  /**
   * The outputs and log compressed for upload, staged on `host` right after the build; for a build
   * that failed, the log alone (no outputs).
   */
  staged?: StagedUpload;
  /**
   * Set when the builder runs beside a signer in one process (the single-machine default): it
   * published the outputs itself, and no upload round trips are needed.
   */
  published?: PublishOutcome;
}

/** Activities on builder queues. */
export interface BuilderActivities {
  buildDerivation(request: BuildRequest): Promise<BuildOutcome>;
}

/** A file staged for upload on the builder: its size and `sha256:<base32>`. */
export interface StagedFile {
  size: number;
  sha256: string;
}

/** An output whose NAR the builder has compressed (zstd) into a staged file. */
export interface StagedOutput extends BuiltOutput {
  file: StagedFile;
}

/** What a builder has staged for one build: outputs and, when it kept one, the compressed log. */
export interface StagedUpload {
  drvPath: string;
  system: string;
  outputs: StagedOutput[];
  log?: StagedFile;
  /**
   * `closure`: `.drv` files and input sources an evaluator publishes for builders on other machines
   * (`drvPath` then only names the batch). The signer checks that each path is what its contents
   * address before it signs, and writes no deriver.
   */
  kind?: 'outputs' | 'closure';
}

/** Where to upload each object the cache lacks (objects it has are left out). */
export interface UploadPlan {
  uploads: Array<{ key: string; target: UploadTarget }>;
}

export interface PublishOutcome {
  /** The outputs as the cache describes them: each NAR hash is the canonical one (the first upload wins). */
  outputs: BuiltOutput[];
  /** Outputs whose canonical NAR hash differs from this build's (the build is not reproducible). */
  differing: string[];
}

/** Activities on a builder's own host queue: work that must happen where the outputs were built. */
export interface HostActivities {
  /**
   * Uploads staged files to their targets and removes the staging. An expired target fails with
   * the non-retryable type UPLOAD_EXPIRED (workflows/definitions.ts), and the workflow asks the signer for fresh ones.
   */
  uploadOutputs(request: { drvPath: string; plan: UploadPlan }): Promise<void>;
}

/** Activities on the signer queue: the only holder of the signing key and the storage credentials. */
export interface SignerActivities {
  /** Checks which objects the cache already has (HEAD) and issues upload targets for the rest. */
  prepareUpload(staged: StagedUpload): Promise<UploadPlan>;
  /** Verifies each NAR is stored as announced, then signs and writes its narinfo (never before). */
  publish(staged: StagedUpload): Promise<PublishOutcome>;
}
