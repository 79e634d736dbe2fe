/**
 * The one front door for a push: forges (webhook, `/ci run`, polling), `harmonia-ci run` and
 * `harmonia-ci eval` all signal the ref's workflow here, starting it if it is not running.
 */
import type { Client } from '@temporalio/client';
import { COORDINATOR_QUEUE, pushSignal, refWorkflowId } from '../workflows/definitions.ts';
import type { refWorkflow } from '../workflows/ref.ts';
import { searchAttributePairs } from '../workflows/search.ts';
import type { PushEvent } from '../workflows/types.ts';

/** Signals (or starts) the ref workflow of `projectName` and `ref` with the push; the workflow creates the eval. */
export async function signalPush(client: Client, projectName: string, ref: string, push: PushEvent): Promise<void> {
  await client.workflow.signalWithStart<typeof refWorkflow, [PushEvent]>('refWorkflow', {
    workflowId: refWorkflowId(projectName, ref),
    taskQueue: COORDINATOR_QUEUE,
    args: [{ projectName, ref }],
    signal: pushSignal,
    signalArgs: [push],
    typedSearchAttributes: searchAttributePairs({ project: projectName, ref }) as never,
    staticSummary: `${projectName} ${ref}`,
  });
}
