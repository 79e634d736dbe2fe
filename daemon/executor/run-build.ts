/**
 * One build-derivation call under the executor's limits. The limits are enforced here, not by the
 * daemon: when one trips we close the connection, the daemon notices the hang-up and kills the
 * builder, and the caller gets the limit's own outcome instead of a generic failure.
 */
import type { Derivation } from '../core/derivation.ts';
import { ActivityTracker } from '../protocol/activity.ts';
import type { BuildResult } from '../protocol/build-wire.ts';
import { ConnectionClosedError } from '../protocol/errors.ts';
import type { DaemonPool } from '../protocol/pool.ts';
import type { BuildLimits } from './types.ts';

/** How the build call ended. */
export type RunEnd =
  | { kind: 'finished'; result: BuildResult }
  | { kind: 'timed-out'; limitMs: number }
  | { kind: 'silent'; limitMs: number }
  | { kind: 'cancelled' };

/** The end plus what the log looked like. */
export interface RunReport {
  end: RunEnd;
  logBytes: number;
  logTruncated: boolean;
}

/** Options of runBuild. */
export interface RunOptions {
  limits: BuildLimits;
  onLogLine?(line: string): void;
  onActivity?(tracker: ActivityTracker): void;
  signal?: AbortSignal;
}

/** The line that replaces the rest of a log beyond the size limit. */
export function truncationMarker(limitBytes: number): string {
  return `[harmonia-ci: log truncated after ${limitBytes} bytes; the build goes on, further output is discarded]`;
}

/** Builds `drv` through a dedicated pool connection, enforcing wall clock, silence and log size. */
export async function runBuild(pool: DaemonPool, drvPath: string, drv: Derivation, inputSrcs: readonly string[], options: RunOptions): Promise<RunReport> {
  const { limits } = options;
  let logBytes = 0;
  let logTruncated = false;
  let stoppedBy: RunEnd | undefined;
  const client = await pool.acquire();
  const stop = (end: RunEnd) => {
    stoppedBy ??= end;
    client.connection.destroy(new ConnectionClosedError(`build of ${drvPath} stopped: ${end.kind}`));
  };

  let silenceTimer: NodeJS.Timeout | undefined;
  const armSilence = () => {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => stop({ kind: 'silent', limitMs: limits.maxSilenceMs }), limits.maxSilenceMs);
  };
  const wallTimer = setTimeout(() => stop({ kind: 'timed-out', limitMs: limits.wallClockMs }), limits.wallClockMs);
  const onAbort = () => stop({ kind: 'cancelled' });
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  armSilence();

  const tracker = new ActivityTracker({
    onLogLine: (line) => {
      armSilence();
      logBytes += Buffer.byteLength(line) + 1;
      if (logTruncated) return;
      if (logBytes > limits.maxLogBytes) {
        logTruncated = true;
        options.onLogLine?.(truncationMarker(limits.maxLogBytes));
        return;
      }
      options.onLogLine?.(line);
    },
    onChange: options.onActivity,
  });

  try {
    const result = await client.buildDerivation(drvPath, drv, inputSrcs, tracker.handlers());
    return { end: stoppedBy ?? { kind: 'finished', result }, logBytes, logTruncated };
  } catch (error) {
    if (stoppedBy && error instanceof ConnectionClosedError) return { end: stoppedBy, logBytes, logTruncated };
    throw error;
  } finally {
    clearTimeout(wallTimer);
    clearTimeout(silenceTimer);
    options.signal?.removeEventListener('abort', onAbort);
    pool.release(client);
  }
}
