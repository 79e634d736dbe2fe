/**
 * The shape of a health check and the deadline every check runs under. The checks themselves
 * live with what they check (db/health.ts, temporal/health.ts, api/health-report.ts), so the
 * command line can check a component without loading the API.
 */

export type ComponentStatus = 'ok' | 'failed' | 'not configured';

export interface ComponentHealth {
  status: ComponentStatus;
  /** Whether the instance is unhealthy when this component is not ok. */
  required: boolean;
  /** What was found, or why the check failed and what to look at. */
  message: string;
  latencyMs: number;
}

export interface HealthReport {
  status: 'ok' | 'unavailable';
  checkedAt: string;
  /** Names of the required components that are not ok. */
  failed: string[];
  components: Record<string, ComponentHealth>;
}

/** Longest a single check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 3000;

/** Node's multi-address connect errors are AggregateErrors with an empty message. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join('; ');
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return error.message || (typeof code === 'string' ? code : error.name);
  }
  return String(error);
}

/** Runs `check` under the deadline; its message on success, the error's on failure, with the time taken. */
export async function timedCheck(required: boolean, check: () => Promise<string>): Promise<ComponentHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  const running = check();
  // A check that loses the race may still fail later; that failure is already reported.
  running.catch(() => {});
  try {
    const message = await Promise.race([running, timeout]);
    return { status: 'ok', required, message, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { status: 'failed', required, message: describeError(error), latencyMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}
