/**
 * How close a workflow came to Temporal's per-run limits (docs/architecture.md, "Workflows and
 * signals"): its runs (a long-lived workflow continues as new), and the most events and signals
 * any one run held.
 */
import type { Client } from '@temporalio/client';

/** Server defaults a run must stay under. */
export const HISTORY_EVENT_LIMIT = 51_200;
export const SIGNALS_PER_RUN_LIMIT = 10_000;

export interface HistoryUse {
  runs: number;
  mostEvents: number;
  mostSignals: number;
}

/** Events and signals per run of every run of `workflowId`. */
export async function historyUse(client: Client, workflowId: string): Promise<HistoryUse> {
  const use: HistoryUse = { runs: 0, mostEvents: 0, mostSignals: 0 };
  for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId.replace(/'/g, "\\'")}'` })) {
    const history = await client.workflow.getHandle(workflowId, run.runId).fetchHistory();
    const events = history.events ?? [];
    use.runs++;
    use.mostEvents = Math.max(use.mostEvents, events.length);
    use.mostSignals = Math.max(use.mostSignals, events.filter((event) => event.workflowExecutionSignaledEventAttributes).length);
  }
  return use;
}

export function describeHistoryUse(use: HistoryUse): string {
  return (
    `${use.runs} run${use.runs === 1 ? '' : 's'}, at most ${use.mostEvents} events (limit ${HISTORY_EVENT_LIMIT}) ` +
    `and ${use.mostSignals} signals (limit ${SIGNALS_PER_RUN_LIMIT}) in one run`
  );
}
