/**
 * nodeWorkflow — `node/<name>`: one builder host as the coordinator sees it.
 *
 * A builder holds no database credentials (docs/architecture.md, "Roles"), so what it has to tell PostgreSQL travels
 * through this workflow: a `heartbeat` signal every ~15 s (registration: systems, features, max
 * jobs, version) and `log-tail` signals with the live tails of its builds; coordinator
 * activities write them. Signals are fire-and-forget and wait out a coordinator restart, so a
 * builder never blocks on the database. Signal-with-start makes the first heartbeat create the
 * workflow; after NODE_SILENCE without a word from the builder it ends, and the next heartbeat
 * starts a new run, which reads the draining flag back from PostgreSQL.
 *
 * Draining goes the same way: `harmonia-ci drain` (or `temporal workflow signal --name drain`)
 * signals here, the flag is persisted to `nodes.draining`, and the builder polls the
 * `node-status` query every couple of seconds — queries add nothing to the history — so it
 * notices within seconds while heartbeats stay cheap.
 */
import {
  condition,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { CoordinatorActivities, NodeHeartbeat } from '../activities/types.ts';
import { COORDINATOR_QUEUE, nodeDrainSignal, nodeHeartbeatSignal, nodeLogTailSignal, nodeStatusQuery } from './definitions.ts';

export interface NodeWorkflowInput {
  name: string;
  /** Carried over continue-as-new. */
  draining?: boolean;
}

/** A node silent this long is gone; its workflow ends (its row stays, with its last-seen time). */
const NODE_SILENCE = '5 minutes';
/** Each round is a handful of events: continue well before the history grows large. */
const ROUNDS_BEFORE_CONTINUE = 200;

const control = proxyActivities<CoordinatorActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export async function nodeWorkflow(input: NodeWorkflowInput): Promise<void> {
  const { name } = input;
  let draining = input.draining;
  let beat: NodeHeartbeat | undefined;
  let last: NodeHeartbeat | undefined;
  let drainRequest: boolean | undefined;
  const tails = new Map<string, string>();
  const pending = (): boolean => beat !== undefined || drainRequest !== undefined || tails.size > 0;

  setHandler(nodeHeartbeatSignal, (next) => {
    beat = next;
  });
  setHandler(nodeDrainSignal, (on = true) => {
    // Known at once, so the builder's next status poll sees it; persisted below.
    drainRequest = on;
    draining = on;
  });
  setHandler(nodeLogTailSignal, ({ drvPath, text }) => {
    tails.set(drvPath, text);
  });
  setHandler(nodeStatusQuery, () => ({ draining }));

  for (let rounds = 1; ; rounds++) {
    if (!(await condition(pending, NODE_SILENCE))) return;
    if (drainRequest !== undefined) {
      const on = drainRequest;
      drainRequest = undefined;
      await control.setNodeDraining(name, on);
    }
    if (beat !== undefined) {
      last = beat;
      beat = undefined;
      const recorded = await control.recordNodeHeartbeat(last);
      // PostgreSQL decides only what this run does not know yet: a drain signal is newer.
      draining ??= recorded.draining;
    }
    if (last) setCurrentDetails(describe(last, draining === true));
    if (tails.size > 0) {
      const batch = [...tails].map(([drvPath, text]) => ({ drvPath, text }));
      tails.clear();
      await control.recordLogTails(batch);
    }
    if (!pending() && (rounds >= ROUNDS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested)) {
      await continueAsNew<typeof nodeWorkflow>({ name, draining });
    }
  }
}

function describe(beat: NodeHeartbeat, draining: boolean): string {
  const features = beat.features.length > 0 ? ` (${beat.features.join(', ')})` : '';
  const state = draining ? 'draining: takes no new builds' : 'taking builds';
  return `**${beat.name}**: ${beat.systems.join(', ')}${features}, ${beat.maxJobs} jobs, ${state}; last heartbeat ${new Date().toISOString()}`;
}
