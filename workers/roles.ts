/**
 * Temporal workers per role. A role is a set of task queues and the activities behind them; the
 * same factories serve `harmonia-ci worker <role>` in a fleet and the in-process workers of
 * `dev` and `run` on one machine.
 */
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { BuilderActivities, CoordinatorActivities, EvaluatorActivities, HostActivities, SignerActivities } from '../activities/types.ts';
import { builderQueue, COORDINATOR_QUEUE, EVAL_QUEUE, hostQueue, SIGNER_QUEUE } from '../workflows/definitions.ts';
import { loadWorkflowBundle } from './bundle.ts';

export interface WorkerContext {
  connection: NativeConnection;
  namespace: string;
  /** Where the workflow bundle is cached. */
  bundleDir: string;
  /** The payload codec of the deployment (temporal/codec.ts), when one is configured. */
  dataConverter?: DataConverter | undefined;
}

/** What every worker of a role shares: its connection, namespace and data converter. */
function base(ctx: WorkerContext): { connection: NativeConnection; namespace: string; dataConverter?: DataConverter } {
  return { connection: ctx.connection, namespace: ctx.namespace, ...(ctx.dataConverter ? { dataConverter: ctx.dataConverter } : {}) };
}

/** Workflows kept in the worker's cache: bounded so 10,000 open builds do not exhaust memory. */
export const MAX_CACHED_WORKFLOWS = 600;

/**
 * How long one workflow activation may run in its sandbox. The SDK's 5 s default is reached by an
 * eval woken with thousands of build results at once on a busy machine, and when the limit
 * interrupts an activation Node's async-hook stack is left corrupt and the whole process aborts
 * ("async hook stack has become corrupted"; test/pipeline/limits.test.ts met it under load). Our
 * workflows loop only on awaits, so the limit guards against nothing of ours: far above any
 * activation, it stays as a last resort.
 */
export const ISOLATE_EXECUTION_TIMEOUT = '2 minutes';
/** Read by Worker.create (its defaults are overridden by what is passed), though not in the SDK's public option type. */
const sandboxLimit = { isolateExecutionTimeout: ISOLATE_EXECUTION_TIMEOUT };

export async function createCoordinatorWorker(ctx: WorkerContext, activities: CoordinatorActivities): Promise<Worker> {
  return Worker.create({
    ...base(ctx),
    taskQueue: COORDINATOR_QUEUE,
    workflowBundle: await loadWorkflowBundle(ctx.bundleDir),
    activities,
    maxCachedWorkflows: MAX_CACHED_WORKFLOWS,
    ...sandboxLimit,
    maxConcurrentActivityTaskExecutions: 32,
  });
}

export async function createEvaluatorWorker(
  ctx: WorkerContext,
  activities: EvaluatorActivities,
  maxEvals = 1,
): Promise<Worker> {
  return Worker.create({
    ...base(ctx),
    taskQueue: EVAL_QUEUE,
    activities,
    maxConcurrentActivityTaskExecutions: maxEvals,
  });
}

/**
 * The signer's worker: the only one holding the signing key and storage credentials. Several
 * processes polling the queue are failover; uploads are verified here, so a few at once suffice.
 */
export async function createSignerWorker(ctx: WorkerContext, activities: SignerActivities, maxConcurrent = 8): Promise<Worker> {
  return Worker.create({
    ...base(ctx),
    taskQueue: SIGNER_QUEUE,
    activities,
    maxConcurrentActivityTaskExecutions: maxConcurrent,
  });
}

export interface BuilderIdentity {
  host: string;
  systems: string[];
  features: string[];
  maxJobs: number;
  /**
   * Build tasks taken per max-jobs slot (default 1). A build gives its slot back once the build
   * itself is done, then stages (and, beside a signer, publishes) its outputs; more tasks than
   * slots keep the slots busy meanwhile. Only for a builder that is alone on its queues (the
   * single-machine default): in a fleet a task held here waiting for a slot may have had an idle
   * builder elsewhere.
   */
  tasksPerSlot?: number;
  /**
   * How long `shutdown()` lets running builds finish before cancelling them (default: none). A
   * draining builder sets it above the build wall-clock limit: a build that started finishes.
   */
  shutdownGraceMs?: number;
}

/**
 * One worker per queue the builder serves: each system with each subset of its features (a
 * derivation requiring `kvm` may run on a builder offering `kvm` and `big-parallel`), plus the
 * host's own queue for uploads of what it built.
 */
export async function createBuilderWorkers(
  ctx: WorkerContext,
  activities: BuilderActivities & HostActivities,
  identity: BuilderIdentity,
): Promise<Worker[]> {
  return [...(await createBuildQueueWorkers(ctx, activities, identity)), await createHostWorker(ctx, activities, identity)];
}

/** The workers of the build queues alone: draining shuts these down and leaves the host queue serving uploads. */
export async function createBuildQueueWorkers(
  ctx: WorkerContext,
  activities: BuilderActivities,
  identity: BuilderIdentity,
): Promise<Worker[]> {
  const queues = identity.systems.flatMap((system) => featureSubsets(identity.features).map((f) => builderQueue(system, f)));
  const build = { buildDerivation: activities.buildDerivation };
  return Promise.all(
    [...new Set(queues)].map((taskQueue) =>
      Worker.create({
        ...base(ctx),
        taskQueue,
        activities: build,
        maxConcurrentActivityTaskExecutions: identity.maxJobs * (identity.tasksPerSlot ?? 1),
        maxHeartbeatThrottleInterval: '10 seconds',
        identity: `${identity.host}:${taskQueue}`,
        ...(identity.shutdownGraceMs === undefined ? {} : { shutdownGraceTime: identity.shutdownGraceMs }),
      }),
    ),
  );
}

/** The worker of the host's own queue: uploads of what this host built. */
export async function createHostWorker(ctx: WorkerContext, activities: HostActivities, identity: BuilderIdentity): Promise<Worker> {
  return Worker.create({
    ...base(ctx),
    taskQueue: hostQueue(identity.host),
    activities: { uploadOutputs: activities.uploadOutputs },
    maxConcurrentActivityTaskExecutions: identity.maxJobs,
    identity: `${identity.host}:${hostQueue(identity.host)}`,
    ...(identity.shutdownGraceMs === undefined ? {} : { shutdownGraceTime: identity.shutdownGraceMs }),
  });
}

/** Every subset of the features, the empty one included (at most 64: six features). */
export function featureSubsets(features: readonly string[]): string[][] {
  const unique = [...new Set(features)].sort().slice(0, 6);
  const subsets: string[][] = [];
  for (let mask = 0; mask < 1 << unique.length; mask++) subsets.push(unique.filter((_, i) => mask & (1 << i)));
  return subsets;
}

/** Runs workers until `shutdown()`; `done` settles when all have stopped. */
export function runWorkers(workers: Worker[]): { done: Promise<void>; shutdown(): Promise<void> } {
  const done = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  return {
    done,
    async shutdown() {
      for (const worker of workers) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      }
      await done;
    },
  };
}
