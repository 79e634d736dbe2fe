/**
 * Draining a builder, from the CLI (`harmonia-ci drain`) and the API alike: signals its node
 * workflow, starting it if its builder is away, so the flag is recorded either way.
 */
import type { Client } from '@temporalio/client';
import { COORDINATOR_QUEUE, nodeDrainSignal, nodeWorkflowId } from '../workflows/definitions.ts';
import type { nodeWorkflow } from '../workflows/node.ts';

/** Sets (`draining`) or clears the drain flag of the builder `name`. */
export async function signalDrain(client: Client, name: string, draining: boolean): Promise<void> {
  await client.workflow.signalWithStart<typeof nodeWorkflow, [boolean?]>('nodeWorkflow', {
    workflowId: nodeWorkflowId(name),
    taskQueue: COORDINATOR_QUEUE,
    args: [{ name }],
    signal: nodeDrainSignal,
    signalArgs: [draining],
    staticSummary: `builder ${name}`,
  });
}
