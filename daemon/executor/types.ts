/**
 * What the executor is asked to do and what it answers.
 *
 * Glossary: an *input* is a store path the build reads (the derivation's sources plus the outputs it
 * uses from input derivations); the *canonical* NAR hash of a path is the one recorded when it was
 * first uploaded; a *Frankenbuild* is a build against a local input whose contents differ from the
 * canonical ones (a non-reproducible dependency built twice).
 */
import type { Derivation } from '../core/derivation.ts';
import type { Hash } from '../core/hash.ts';
import type { ActivityTracker } from '../protocol/activity.ts';
import type { BuildStatus } from '../protocol/constants.ts';

/** Limits of one build; each ends the build with its own outcome. */
export interface BuildLimits {
  /** Wall-clock time from the start of the build (default 4 h). */
  wallClockMs: number;
  /** Time without a complete log line (default 30 min). */
  maxSilenceMs: number;
  /** Log bytes passed on; beyond, one truncation marker and the build goes on (default 64 MiB). */
  maxLogBytes: number;
  /** Total NAR size of the outputs (default 4 GiB); beyond, the build fails. */
  maxOutputBytes: number;
}

export const DEFAULT_BUILD_LIMITS: Readonly<BuildLimits> = {
  wallClockMs: 4 * 3600_000,
  maxSilenceMs: 30 * 60_000,
  maxLogBytes: 64 * 1024 * 1024,
  maxOutputBytes: 4 * 1024 * 1024 * 1024,
};

/** One build for the executor. */
export interface BuildRequest {
  drvPath: string;
  drv: Derivation;
  /** Output paths the derivation uses from its input derivations (the daemon never reads input `.drv`s). */
  inputPaths: readonly string[];
  /** Canonical NAR hashes of inputs (and, if known, of their references), for the Frankenbuild check. */
  canonicalNarHashes?: ReadonlyMap<string, Hash>;
  /** Limits for this build, each bounded by the executor's own (a request may lower a limit, never raise it). */
  limits?: Partial<BuildLimits>;
  /** Each line of builder output, in order; after the log limit, one marker line and nothing more. */
  onLogLine?(line: string): void;
  /** Called whenever the daemon's activity tree changes (phases, progress). */
  onActivity?(tracker: ActivityTracker): void;
  /** Aborting stops the build (the daemon kills the builder when the connection closes). */
  signal?: AbortSignal;
}

/** A built output as the store registered it. */
export interface BuiltOutputInfo {
  name: string;
  path: string;
  narHash: Hash;
  narSize: number;
  references: string[];
}

/** What the executor did about inputs before building. */
export interface InputReport {
  /** Paths imported from the binary cache (missing inputs and their missing references). */
  substituted: string[];
  /** Local inputs whose NAR hash differed from the canonical one: deleted and substituted again. */
  replaced: string[];
}

/** Fields every outcome has. */
interface OutcomeBase {
  inputs: InputReport;
  /** Log bytes received (including any beyond the limit). */
  logBytes: number;
  logTruncated: boolean;
  durationMs: number;
}

/** The result of one build. Faults of the machinery (daemon gone, cache unreachable) are thrown instead. */
export type BuildOutcome =
  | (OutcomeBase & { kind: 'succeeded'; status: BuildStatus; outputs: BuiltOutputInfo[] })
  | (OutcomeBase & { kind: 'failed'; status: BuildStatus; message: string })
  | (OutcomeBase & { kind: 'timed-out'; limitMs: number })
  | (OutcomeBase & { kind: 'silent'; limitMs: number })
  | (OutcomeBase & { kind: 'output-too-large'; totalBytes: number; limitBytes: number; outputs: BuiltOutputInfo[] })
  | (OutcomeBase & { kind: 'cancelled' });
