/**
 * The publishing steps of a build as task-queue activities, for a builder that does not share a
 * process with a signer, or whose own attempt to publish failed: upload on the builder's own host
 * queue (the staged files are there), targets and publish on the signer queue. The sequence
 * itself is publish-sequence.ts.
 *
 * Storage that is away (S3 down) is waited out: every step retries with backoff until the
 * publish deadline, and the build is never run again for it. A host that vanished is not waited
 * for: nobody polls its queue, so its upload times out before it starts and the build runs
 * again elsewhere.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import type { HostActivities, PublishOutcome, SignerActivities, StagedUpload } from '../activities/types.ts';
import { hostQueue, SIGNER_QUEUE, UPLOAD_EXPIRED } from './definitions.ts';
import { publishStaged } from './publish-sequence.ts';

/** If the host vanished, nobody polls its queue: give up after this and build again elsewhere. */
const HOST_GONE_AFTER = '1 hour';
/**
 * An upload whose host stopped heartbeating (it died, or its completion was lost with a crashed
 * Temporal server) is tried again after this, not after its 30-minute start-to-close timeout.
 */
const HOST_HEARTBEAT_TIMEOUT = '2 minutes';
/** A signer silent this long is presumed dead; another one (or the same, restarted) retries. */
const SIGNER_HEARTBEAT_TIMEOUT = '1 minute';
/** `limits.publish-deadline` unless the build's input says otherwise. */
export const DEFAULT_PUBLISH_DEADLINE_MS = 6 * 3600_000;
/** Backoff between tries while storage is away. */
const STORAGE_RETRY = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes' } as const;

/** Publishes what `host` staged after building; returns the outputs with their canonical NAR hashes. */
export function publishFromHost(
  staged: StagedUpload,
  options: { host: string; heartbeatTimeoutMs?: number | undefined; deadlineMs?: number | undefined },
): Promise<PublishOutcome> {
  const deadline = options.deadlineMs ?? DEFAULT_PUBLISH_DEADLINE_MS;
  const host = proxyActivities<HostActivities>({
    taskQueue: hostQueue(options.host),
    scheduleToStartTimeout: HOST_GONE_AFTER,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: options.heartbeatTimeoutMs ?? HOST_HEARTBEAT_TIMEOUT,
    scheduleToCloseTimeout: deadline,
    retry: STORAGE_RETRY,
  });
  const signer = proxyActivities<SignerActivities>({
    taskQueue: SIGNER_QUEUE,
    startToCloseTimeout: '30 minutes',
    scheduleToCloseTimeout: deadline,
    heartbeatTimeout: options.heartbeatTimeoutMs ?? SIGNER_HEARTBEAT_TIMEOUT,
    // Several signers on the queue are failover; storage faults are waited out until the deadline.
    retry: STORAGE_RETRY,
  });
  return publishStaged(
    {
      targets: signer.prepareUpload,
      upload: host.uploadOutputs,
      publish: signer.publish,
      isExpired: (error) =>
        error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === UPLOAD_EXPIRED,
    },
    staged,
  );
}

/**
 * Whether publishing gave up because storage stayed away past the deadline: retries ran out of
 * time. A host that vanished (its upload never started) is not that: the build runs elsewhere.
 */
export function isPastPublishDeadline(error: unknown): boolean {
  if (!(error instanceof ActivityFailure)) return false;
  if (error.cause instanceof TimeoutFailure) return error.cause.timeoutType === 'SCHEDULE_TO_CLOSE';
  return error.retryState === 'TIMEOUT';
}
