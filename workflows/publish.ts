/**
 * The upload step of a build (DESIGN §2, step 4), called by buildWorkflow after a successful build.
 * The builder stages each output (NAR → zstd, both hashed) on its own host queue; the signer checks
 * what the cache already has and issues upload targets scoped to one key, length and checksum for
 * the rest; the builder uploads; the signer verifies what arrived, signs and writes narinfo.
 * Expired targets are reissued here; every other fault goes to the build's retry loop.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { HostActivities, PublishOutcome, SignerActivities, StagedUpload } from '../activities/types.ts';
import { hostQueue, SIGNER_QUEUE, UPLOAD_EXPIRED } from './definitions.ts';
import type { BuiltOutput } from './types.ts';

/** If the host vanished, nobody polls its queue: give up after this and build again elsewhere. */
const UPLOAD_TIMEOUT = '1 hour';
/** A signer silent this long is presumed dead; another one (or the same, restarted) retries. */
const SIGNER_HEARTBEAT_TIMEOUT = '1 minute';
/** Rounds of fresh targets after expiry before the fault goes to the build's retry loop. */
const MAX_TARGET_ROUNDS = 3;

export interface PublishRequest {
  drvPath: string;
  system: string;
  /** The builder host that built the outputs and holds them. */
  host: string;
  outputs: BuiltOutput[];
  /** What the builder staged right after the build; staged on the host's queue when absent. */
  staged?: StagedUpload;
  /** Overrides the signer heartbeat timeout (the build's own heartbeat setting). */
  heartbeatTimeoutMs?: number;
}

function isExpired(error: unknown): boolean {
  return error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === UPLOAD_EXPIRED;
}

/** Uploads the outputs built on `host` and publishes them; returns them with their canonical NAR hashes. */
export async function uploadAndPublish(request: PublishRequest): Promise<PublishOutcome> {
  const { drvPath } = request;
  const host = proxyActivities<HostActivities>({
    taskQueue: hostQueue(request.host),
    scheduleToCloseTimeout: UPLOAD_TIMEOUT,
    retry: { maximumAttempts: 2 },
  });
  const signer = proxyActivities<SignerActivities>({
    taskQueue: SIGNER_QUEUE,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: request.heartbeatTimeoutMs ?? SIGNER_HEARTBEAT_TIMEOUT,
    // Several signers on the queue are failover; storage faults get a few minutes to clear.
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 10 },
  });

  const staged = request.staged ?? (await host.stageOutputs({ drvPath, system: request.system, outputs: request.outputs }));
  for (let round = 1; ; round++) {
    const plan = await signer.prepareUpload(staged);
    try {
      // Also with nothing to send: the call clears the host's staging.
      await host.uploadOutputs({ drvPath, plan });
      break;
    } catch (error) {
      if (round >= MAX_TARGET_ROUNDS || !isExpired(error)) throw error;
    }
  }
  return signer.publish(staged);
}
