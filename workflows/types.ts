/**
 * Domain words, shared by workflows, activities, the API and the CLI.
 *
 * - project: a repository we run CI for, with its settings.
 * - ref: a branch, tag or pull request of a project; one refWorkflow each.
 * - eval (evaluation): one run of the evaluator over a project's jobset at one commit.
 * - attr (job): one attribute of the jobset, resolving to a derivation or to an error.
 * - derivation (drv): a `.drv` in the Nix store; its outputs are store paths.
 * - output: one named result of a derivation (`out`, `dev`, …).
 * - build: the work of realising one derivation; one buildWorkflow per drv across all evals.
 * - builder: a host that builds through its local nix-daemon and uploads outputs.
 * - signer: the only role holding the signing key; it publishes narinfo to the cache.
 * - cache: the binary cache (S3 or a local directory) holding NARs and narinfo.
 */
import type { BuildInputs } from '../activities/types.ts';
import type { NarHash } from '../daemon/core/hash.ts';

export type EvalStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';

export type BuildStatus =
  | 'pending'
  | 'building'
  | 'uploading'
  | 'succeeded'
  | 'failed'
  | 'dep-failed'
  | 'cancelled'
  | 'timed-out'
  /** Built, but an output holds `nix-support/failed` (Hydra's "failed with output"): kept, signed and served, yet a failure. */
  | 'failed-with-output';

/** Build states after which nothing more happens without a manual rebuild. */
export const FINAL_BUILD_STATUSES: readonly BuildStatus[] = ['succeeded', 'failed', 'dep-failed', 'cancelled', 'timed-out', 'failed-with-output'];

/** Build states whose outputs exist in the cache: dependents may build on them (as in Hydra). */
export const OUTPUT_STATUSES: readonly BuildStatus[] = ['succeeded', 'failed-with-output'];

/** Where the evaluator finds the jobset: a local path or a git repository at a commit. */
export interface JobsetSource {
  kind: 'path' | 'git';
  /** A directory (flake), a `.nix` file, or a git URL. */
  url: string;
  /** The commit to check out (git only). */
  rev?: string;
}

/** A push (or PR update) as the ref workflow receives it. */
export interface PushEvent {
  sha: string;
  /** The git tree hash: identical trees are evaluated once per project. */
  treeHash?: string;
  source: JobsetSource;
  /** The forge event that caused it, for the record (`push`, `pull_request`, `cli`, …). */
  event: string;
  /** Code from someone who cannot push to the repository (a pull request from outside): evaluated restricted. */
  untrusted?: boolean;
}

export interface RefWorkflowInput {
  /** `projects.name`, e.g. `owner/repo`. */
  projectName: string;
  /** The same name, as runs recorded before it was called projectName carry it. */
  projectId?: string;
  ref: string;
  /** State carried over continue-as-new. */
  handledShas?: string[];
  pending?: PushEvent[];
}

export interface EvalSettings {
  /** Attribute paths; empty means the source's default (`checks` of a flake, a file's whole value). */
  attrs: string[];
  allowIfd: boolean;
  evalTimeoutMs: number;
  /** Systems the builders serve; jobs for other systems are left out (as buildbot-nix does). */
  systems: string[];
  /** Commit statuses per attribute (config/repo-schema.ts STATUS_MODES); absent: `summary`. */
  statuses?: 'summary' | 'failures' | 'all';
  /** Untrusted code: restricted evaluation (no files outside the source, no URLs, no IFD, a memory limit, no credentials). */
  restricted?: boolean;
}

export interface EvalWorkflowInput {
  evalId: string;
  /** `projects.name`, e.g. `owner/repo`. */
  projectName: string;
  /** The same name, as runs recorded before it was called projectName carry it. */
  projectId?: string;
  ref: string;
  sha: string;
  source: JobsetSource;
  settings: EvalSettings;
  /** `evaluate` runs the evaluator first; `resume` continues with what PostgreSQL holds. */
  mode: 'evaluate' | 'resume';
}

/** The project name of a ref or eval workflow input, also from runs recorded before the field's rename. */
export function projectNameOf(input: { projectName?: string; projectId?: string }): string {
  return input.projectName ?? input.projectId ?? '';
}

export interface BuildWorkflowInput {
  drvPath: string;
  drvName: string;
  system: string;
  requiredSystemFeatures: string[];
  /** Evals to tell about the result (workflow ids). */
  subscribers: string[];
  /** Attempts for infrastructure faults, the first one included (`limits.attempts`, default 3). */
  maxAttempts?: number;
  /** How long the outputs may wait for storage to take them before the build fails (`limits.publish-deadline`, default 6 h). */
  publishDeadlineMs?: number;
  /** A builder silent this long is presumed dead and the build goes elsewhere (default 2 min). */
  heartbeatTimeoutMs?: number;
  /**
   * Fair sharing of builders between projects: the project of the eval that started the build,
   * and its scheduling shares / 100. Waiting builds of projects are dispatched in proportion to
   * their weights (Temporal task-queue fairness).
   */
  fairness?: { key: string; weight: number };
  /** A manual rebuild: dispatched before every other waiting build. */
  urgent?: boolean;
  /**
   * The project had used more than its share of recent builder time when the build was started:
   * dispatched after the waiting builds of projects that had not. Absent in runs recorded before.
   */
  overShare?: boolean;
  /**
   * What `beginBuild` would answer, read by the scheduler in the statement that found the build
   * ready: given only to the first run of the build's workflow, when its record was pending with
   * nothing to reset (activities/coordinator/build-inputs.ts). The run then asks the builder at
   * once, without a local activity in its first task. Absent in runs recorded before.
   */
  begun?: BuildInputs;
}

export interface BuiltOutput {
  name: string;
  path: string;
  narHash: NarHash;
  narSize: number;
  references: string[];
}

/** One file or directory an output offers for download (`nix-support/hydra-build-products`). */
export interface BuildProduct {
  /** Hydra's product type and subtype: `file binary-dist`, `doc manual`, `report coverage`, … */
  type: string;
  subtype: string;
  /** The product's store path, inside one of the build's outputs, with no symbolic link on the way. */
  path: string;
  /** Its last component, as Hydra names products. */
  name: string;
  /** For a directory: the file to open first, relative to it (`index.html`). */
  defaultPath?: string;
  /** For a regular file: its size and SHA-256 (hex). */
  fileSize?: number;
  sha256?: string;
}

export interface BuildResult {
  drvPath: string;
  status: BuildStatus;
  /** For `dep-failed`: the derivation whose own failure caused this one. */
  rootCause?: string;
  error?: string;
  outputs?: BuiltOutput[];
  /** Files the outputs offer for download (`nix-support/hydra-build-products`). */
  products?: BuildProduct[];
}

/** Counts of one eval's builds, as the eval workflow and status reports see them. */
export interface EvalProgress {
  total: number;
  cached: number;
  succeeded: number;
  failed: number;
  depFailed: number;
  cancelled: number;
  timedOut: number;
  building: number;
  pending: number;
  /** True when no build of the eval can change state any more. */
  done: boolean;
  /** Builds this pass found lost (their workflow gone while their record said open) and started again. */
  repaired?: number;
}
