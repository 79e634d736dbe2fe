/** Numbers of the worker protocol (libstore/worker-protocol.hh, libutil/logging.hh). */

export const WORKER_MAGIC_1 = 0x6e697863;
export const WORKER_MAGIC_2 = 0x6478696f;

/** Operation codes of the requests this client sends. */
export const Op = {
  IsValidPath: 1,
  BuildPaths: 9,
  AddTempRoot: 11,
  AddIndirectRoot: 12,
  SetOptions: 19,
  CollectGarbage: 20,
  QueryPathInfo: 26,
  QueryValidPaths: 31,
  BuildDerivation: 36,
  NarFromPath: 38,
  AddToStoreNar: 39,
  QueryMissing: 40,
  BuildPathsWithResults: 46,
} as const;

/** Tags of the messages the daemon interleaves before an operation's reply. */
export const Stderr = {
  Next: 0x6f6c6d67,
  Read: 0x64617461,
  Write: 0x64617416,
  Last: 0x616c7473,
  Error: 0x63787470,
  StartActivity: 0x53545254,
  StopActivity: 0x53544f50,
  Result: 0x52534c54,
} as const;

/** Activity types (ActivityType in logging.hh). */
export const ActivityType = {
  Unknown: 0,
  CopyPath: 100,
  FileTransfer: 101,
  Realise: 102,
  CopyPaths: 103,
  Builds: 104,
  Build: 105,
  OptimiseStore: 106,
  VerifyPaths: 107,
  Substitute: 108,
  QueryPathInfo: 109,
  PostBuildHook: 110,
  BuildWaiting: 111,
} as const;

/** Result types (ResultType in logging.hh). */
export const ResultType = {
  FileLinked: 100,
  BuildLogLine: 101,
  UntrustedPath: 102,
  CorruptedPath: 103,
  SetPhase: 104,
  Progress: 105,
  SetExpected: 106,
  PostBuildLogLine: 107,
} as const;

/** Verbosity levels (Verbosity in logging.hh). */
export const Verbosity = {
  Error: 0,
  Warn: 1,
  Notice: 2,
  Info: 3,
  Talkative: 4,
  Chatty: 5,
  Debug: 6,
  Vomit: 7,
} as const;

/** Build modes accepted by build-paths and build-derivation. */
export const BuildMode = { Normal: 0, Repair: 1, Check: 2 } as const;
export type BuildModeValue = (typeof BuildMode)[keyof typeof BuildMode];

/** Garbage-collector actions (GCOptions::GCAction). */
export const GcAction = { ReturnLive: 0, ReturnDead: 1, DeleteDead: 2, DeleteSpecific: 3 } as const;

/** BuildResult::Status, in wire order. */
export const BUILD_STATUSES = [
  'Built',
  'Substituted',
  'AlreadyValid',
  'PermanentFailure',
  'InputRejected',
  'OutputRejected',
  'TransientFailure',
  'CachedFailure',
  'TimedOut',
  'MiscFailure',
  'DependencyFailed',
  'LogLimitExceeded',
  'NotDeterministic',
  'ResolvesToAlreadyValid',
  'NoSubstituters',
] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number] | `Unknown(${number})`;

/** Statuses after which the outputs are valid. */
export const SUCCESSFUL_BUILD_STATUSES: ReadonlySet<BuildStatus> = new Set(['Built', 'Substituted', 'AlreadyValid', 'ResolvesToAlreadyValid']);
