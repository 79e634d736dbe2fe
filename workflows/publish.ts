/**
 * The publishing steps of a build as task-queue activities, for a builder that does not share a
 * process with a signer: upload on the builder's own host queue (the staged files are there),
 * targets and publish on the signer queue. The sequence itself is publish-sequence.ts.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { HostActivities, PublishOutcome, SignerActivities, StagedUpload } from '../activities/types.ts';
import { hostQueue, SIGNER_QUEUE, UPLOAD_EXPIRED } from './definitions.ts';
import { publishStaged } from './publish-sequence.ts';

/** If the host vanished, nobody polls its queue: give up after this and build again elsewhere. */
const UPLOAD_TIMEOUT = '1 hour';
/** A signer silent this long is presumed dead; another one (or the same, restarted) retries. */
const SIGNER_HEARTBEAT_TIMEOUT = '1 minute';

/** Publishes what `host` staged after building; returns the outputs with their canonical NAR hashes. */
export function publishFromHost(
  staged: StagedUpload,
  options: { host: string; heartbeatTimeoutMs?: number | undefined },
): Promise<PublishOutcome> {
  const host = proxyActivities<HostActivities>({
    taskQueue: hostQueue(options.host),
    scheduleToCloseTimeout: UPLOAD_TIMEOUT,
    retry: { maximumAttempts: 2 },
  });
  const signer = proxyActivities<SignerActivities>({
    taskQueue: SIGNER_QUEUE,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: options.heartbeatTimeoutMs ?? SIGNER_HEARTBEAT_TIMEOUT,
    // Several signers on the queue are failover; storage faults get a few minutes to clear.
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 10 },
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
