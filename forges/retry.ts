/** Forge failures as Temporal sees them: transient ones are retried, after the wait the forge asked for. */
import { ApplicationFailure } from '@temporalio/common';
import { ForgeRequestError } from './errors.ts';

/**
 * A retryable ApplicationFailure for a transient forge error (5xx, rate limit, network), with
 * `nextRetryDelay` from retry-after / x-ratelimit-reset; undefined for anything else.
 */
export function asActivityFailure(error: unknown): ApplicationFailure | undefined {
  if (!(error instanceof ForgeRequestError) || !error.transient) return undefined;
  return ApplicationFailure.create({
    message: error.message,
    type: error.status === 403 || error.status === 429 ? 'ForgeRateLimited' : 'ForgeUnavailable',
    nonRetryable: false,
    ...(error.retryAfterMs === undefined ? {} : { nextRetryDelay: Math.max(1000, error.retryAfterMs) }),
    cause: error,
  });
}
