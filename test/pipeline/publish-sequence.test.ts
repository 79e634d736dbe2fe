/** The publish sequence (workflows/publish-sequence.ts) with hand-written steps: expired targets are reissued, nothing else is. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PublishOutcome, StagedUpload, UploadPlan } from '../../activities/types.ts';
import { MAX_TARGET_ROUNDS, publishStaged, type PublishSteps } from '../../workflows/publish-sequence.ts';

const staged: StagedUpload = { drvPath: '/nix/store/00000000000000000000000000000000-x.drv', system: 'x86_64-linux', outputs: [] };
const published: PublishOutcome = { outputs: [], differing: [] };

class Expired extends Error {}

/** Steps that record each call; `failures` are thrown by the uploads, in order. */
function recordingSteps(failures: Error[]): PublishSteps & { calls: string[] } {
  const calls: string[] = [];
  let round = 0;
  return {
    calls,
    async targets() {
      round++;
      calls.push(`targets ${round}`);
      return { uploads: [{ key: `nar/${round}`, target: { kind: 'file', path: `/tmp/${round}`, expiresAt: 0 } }] } as UploadPlan;
    },
    async upload({ plan }) {
      calls.push(`upload ${plan.uploads[0]!.key}`);
      const failure = failures.shift();
      if (failure) throw failure;
    },
    async publish() {
      calls.push('publish');
      return published;
    },
    isExpired: (error) => error instanceof Expired,
  };
}

describe('publish sequence', () => {
  it('asks for fresh targets when the upload found them expired, then publishes', async () => {
    const steps = recordingSteps([new Expired('expired')]);
    assert.equal(await publishStaged(steps, staged), published);
    assert.deepEqual(steps.calls, ['targets 1', 'upload nar/1', 'targets 2', 'upload nar/2', 'publish']);
  });

  it('gives up after MAX_TARGET_ROUNDS expiries without publishing', async () => {
    const steps = recordingSteps(Array.from({ length: MAX_TARGET_ROUNDS }, () => new Expired('expired')));
    await assert.rejects(publishStaged(steps, staged), Expired);
    assert.equal(steps.calls.filter((call) => call.startsWith('targets')).length, MAX_TARGET_ROUNDS);
    assert.ok(!steps.calls.includes('publish'));
  });

  it('passes any other upload fault to the caller at once, without publishing', async () => {
    const steps = recordingSteps([new Error('connection reset')]);
    await assert.rejects(publishStaged(steps, staged), /connection reset/);
    assert.deepEqual(steps.calls, ['targets 1', 'upload nar/1']);
  });
});
