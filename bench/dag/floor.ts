/**
 * Temporal's own floor for the dag benchmark: as many workflows as the DAG has derivations, each
 * shaped like a build workflow at its smallest (bench/dag/floor-workflow.ts), on the same server
 * and worker settings, started 16 at a time with at most as many open as an eval keeps open.
 * Whatever the pipeline takes beyond this is ours.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { MAX_CACHED_WORKFLOWS } from '../../workers/roles.ts';
import { Semaphore } from '../../lib/semaphore.ts';
import { WINDOW } from '../../workflows/eval.ts';
import { floorSubscribeSignal, type floorWorkflow } from './floor-workflow.ts';

const STARTS_IN_FLIGHT = 16;

/** Runs `count` floor workflows to completion; returns the milliseconds it took. */
export async function measureTemporalFloor(options: {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  count: number;
  /** Activity slots of the stand-in builder (the real builder's max jobs × tasks per slot). */
  builderSlots: number;
  /**
   * Start each workflow eagerly through the workers' own connection, as `run` and `dev` start
   * build workflows, instead of by signal-with-start: the first task comes back with the start.
   */
  eager?: boolean;
}): Promise<number> {
  const { connection, namespace, count } = options;
  const client = options.eager ? new Client({ connection, namespace }) : options.client;
  const queue = `floor-${randomUUID()}`;
  const workflows = await Worker.create({
    connection,
    namespace,
    taskQueue: queue,
    workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
    maxCachedWorkflows: MAX_CACHED_WORKFLOWS,
  });
  const builder = await Worker.create({
    connection,
    namespace,
    taskQueue: 'floor-builder',
    activities: { build: async () => undefined },
    maxConcurrentActivityTaskExecutions: options.builderSlots,
  });
  const running = Promise.all([workflows.run(), builder.run()]);
  try {
    const started = performance.now();
    const results: Array<Promise<void>> = [];
    const open = new Semaphore(WINDOW);
    let next = 0;
    const starter = async (): Promise<void> => {
      for (let i = next++; i < count; i = next++) {
        const release = await open.acquire();
        const workflowId = `${queue}/${i}`;
        const handle = options.eager
          ? await client.workflow.start<typeof floorWorkflow>('floorWorkflow', { workflowId, taskQueue: queue, args: [], requestEagerStart: true })
          : await client.workflow.signalWithStart<typeof floorWorkflow, [string]>('floorWorkflow', {
              workflowId,
              taskQueue: queue,
              args: [],
              signal: floorSubscribeSignal,
              signalArgs: ['bench'],
            });
        results.push(handle.result().finally(release));
      }
    };
    await Promise.all(Array.from({ length: STARTS_IN_FLIGHT }, starter));
    await Promise.all(results);
    return performance.now() - started;
  } finally {
    workflows.shutdown();
    builder.shutdown();
    await running;
  }
}
