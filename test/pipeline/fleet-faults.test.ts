/**
 * The short versions of the fleet drills (test/drills/fleet.ts): each role in its own process,
 * a six-derivation DAG with one failure, and one part taken away mid-run — the coordinator
 * SIGKILLed, the Temporal dev server SIGKILLed and restarted on its SQLite file, PostgreSQL (a
 * private cluster) restarted. Each run must end as a fault-free run does: the same job statuses,
 * every successful derivation built once and published with its NAR, no eval left open.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { DrillContext, Outcome } from '../drills/common.ts';
import { coordinatorKilled, postgresRestarted, temporalKilled, testDrillContext } from '../drills/fleet.ts';

// Two layers of three: d1_0 fails on purpose (it reads d0_0 and d0_1), the rest succeed.
const EXPECTED = { d1_0: 'failed', d1_1: 'succeeded', d1_2: 'succeeded' };

function assertNothingLost(result: Outcome): void {
  assert.deepEqual(result.statuses, EXPECTED, result.note);
  assert.deepEqual(result.builtTwice, [], 'no derivation built twice');
  assert.equal(result.narinfosWithoutNar, 0);
  // Five outputs, and the six .drv files the evaluator publishes for builders.
  assert.equal(result.narinfos, 5 + 6, 'every successful derivation published');
  assert.equal(result.openEvals, 0);
}

describe('fleet: one part taken away mid-run', () => {
  let context: DrillContext;
  before(async () => {
    context = await testDrillContext('hci-fleet-faults-', { layers: 2, width: 3 });
  });
  after(async () => {
    if (context) await rm(context.root, { recursive: true, force: true });
  });

  it('the coordinator SIGKILLed and started again', async () => {
    assertNothingLost(await coordinatorKilled(context, 1));
  });

  it('the Temporal dev server SIGKILLed and started again on its SQLite file', async () => {
    assertNothingLost(await temporalKilled(context, 2));
  });

  it('PostgreSQL stopped and started again', async () => {
    assertNothingLost(await postgresRestarted(context, 3));
  });
});
