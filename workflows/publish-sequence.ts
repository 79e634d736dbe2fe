/**
 * From staged outputs to signed narinfo: the one sequence, whether its steps are task-queue
 * activities (workflows/publish.ts: a builder on its own machine) or plain calls in one process
 * (workers/wiring.ts: a builder beside the signer). docs/architecture.md, "Binary cache and publishing".
 *
 * Before it, the build activity has staged each output on the host that built it (NAR → zstd,
 * both hashed: activities/builder/upload.ts). Then the signer checks what the cache already has
 * and issues upload targets scoped to one key, length and checksum for the rest; the host
 * uploads; the signer verifies what arrived, signs and writes narinfo. Targets that expired
 * before use are reissued here, up to MAX_TARGET_ROUNDS; every other fault goes to the caller.
 *
 * Pure: no I/O of its own, so workflow code may run it.
 */
import type { PublishOutcome, StagedUpload, UploadPlan } from '../activities/types.ts';

/** Rounds of fresh targets after expiry before the fault goes to the build's retry loop. */
export const MAX_TARGET_ROUNDS = 3;

/** The steps of publishing, performed by the signer (targets, publish) and the host that built (upload). */
export interface PublishSteps {
  /** Which objects the cache lacks, and a target for each. */
  targets(staged: StagedUpload): Promise<UploadPlan>;
  /** Sends the staged files to their targets, then clears the host's staging (also with nothing to send). */
  upload(request: { drvPath: string; plan: UploadPlan }): Promise<void>;
  /** Verifies each NAR is stored as announced, then signs and writes its narinfo. */
  publish(staged: StagedUpload): Promise<PublishOutcome>;
  /** Whether an upload failed because its targets expired (UPLOAD_EXPIRED). */
  isExpired(error: unknown): boolean;
}

/** Uploads what a builder staged and publishes it; returns the outputs with their canonical NAR hashes. */
export async function publishStaged(steps: PublishSteps, staged: StagedUpload): Promise<PublishOutcome> {
  for (let round = 1; ; round++) {
    const plan = await steps.targets(staged);
    try {
      await steps.upload({ drvPath: staged.drvPath, plan });
      break;
    } catch (error) {
      if (round >= MAX_TARGET_ROUNDS || !steps.isExpired(error)) throw error;
    }
  }
  return steps.publish(staged);
}
