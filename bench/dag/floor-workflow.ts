/**
 * The least a build workflow can be (bench/dag/floor.ts): started by signal-with-start like
 * buildWorkflow, one activity on another task queue like the build, then done. No database, no
 * Nix, no eval: what Temporal itself costs per derivation.
 */
import { defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

export const floorSubscribeSignal = defineSignal<[string]>('subscribe');

const builder = proxyActivities<{ build(): Promise<void> }>({ taskQueue: 'floor-builder', startToCloseTimeout: '1 minute' });

export async function floorWorkflow(): Promise<void> {
  setHandler(floorSubscribeSignal, () => undefined);
  await builder.build();
}
