/**
 * Heartbeats for steps inside longer activities (staging, uploading, signing). Each is a write on
 * the Temporal server, and the SDK sends an activity's first one at once: for the many short
 * steps of a CI run that is one write per build for nothing. So a step's heartbeat is sent only
 * once its activity has run for a while, still well inside the heartbeat timeout.
 */
import { Context } from '@temporalio/activity';

/** Quiet time at the start of an activity, at most; a third of its heartbeat timeout when that is shorter. */
const QUIET_MS = 5_000;

const firstSeen = new WeakMap<Context, number>();

/** Heartbeats the current activity unless it has only just started; outside an activity, nothing. */
export function stepHeartbeat(details?: unknown): void {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return; // Called outside an activity (tests calling the functions directly): nobody to tell.
  }
  const now = Date.now();
  const first = firstSeen.get(context) ?? now;
  firstSeen.set(context, first);
  const quiet = Math.min(QUIET_MS, (context.info.heartbeatTimeoutMs ?? Infinity) / 3);
  if (now - first >= quiet) context.heartbeat(details);
}

/**
 * Runs `work`, heartbeating the current activity every few seconds while it runs (a third of the
 * heartbeat timeout at most): for steps whose progress has no natural beat, such as one long upload.
 * A worker that dies stops heartbeating, and the activity is retried after its heartbeat timeout
 * instead of its whole start-to-close timeout (a completion lost with a crashed server, too).
 */
export async function withHeartbeats<T>(work: () => Promise<T>, details?: unknown): Promise<T> {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return work();
  }
  const every = Math.min(10_000, (context.info.heartbeatTimeoutMs ?? Infinity) / 3);
  const timer = setInterval(() => context.heartbeat(details), every);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
