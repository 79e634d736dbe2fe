/** The per-connection settings sent with set-options right after the handshake. */
import { Verbosity } from './constants.ts';
import type { WireWriter } from './wire.ts';

/** Settings the daemon applies to this connection's operations. */
export interface ClientSettings {
  keepFailed: boolean;
  keepGoing: boolean;
  tryFallback: boolean;
  /** Which STDERR_NEXT messages the daemon sends (activities and build log lines always come). */
  verbosity: number;
  maxBuildJobs: number;
  /** Seconds without output after which the daemon kills a build; 0 = never. */
  maxSilentTime: number;
  /** Cores a builder may use (NIX_BUILD_CORES); 0 = all. */
  buildCores: number;
  /** Let the daemon substitute from its configured substituters. Builders substitute from our cache themselves. */
  useSubstitutes: boolean;
  /** Further `name = value` settings, as with `--option` (only honoured for trusted users). */
  overrides: Record<string, string>;
}

/** Defaults for a builder: quiet, one job per connection, no daemon-side substitution. */
export const DEFAULT_CLIENT_SETTINGS: ClientSettings = {
  keepFailed: false,
  keepGoing: false,
  tryFallback: false,
  verbosity: Verbosity.Info,
  maxBuildJobs: 1,
  maxSilentTime: 0,
  buildCores: 0,
  useSubstitutes: false,
  overrides: {},
};

/** Writes the body of set-options. */
export function writeClientSettings(writer: WireWriter, settings: ClientSettings): void {
  writer
    .bool(settings.keepFailed)
    .bool(settings.keepGoing)
    .bool(settings.tryFallback)
    .u64(settings.verbosity)
    .u64(settings.maxBuildJobs)
    .u64(settings.maxSilentTime)
    .u64(1) // useBuildHook: obsolete, ignored by the daemon
    .u64(Verbosity.Error) // "verbose build": the daemon compares this with lvlError
    .u64(0) // logType: obsolete
    .u64(0) // printBuildTrace: obsolete
    .u64(settings.buildCores)
    .bool(settings.useSubstitutes)
    .stringPairs(Object.entries(settings.overrides));
}
