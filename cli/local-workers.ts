/**
 * The in-process workers of `dev` and `run`: coordinator, evaluator and one builder, wired to the
 * local stack. A fleet runs the same factories apart (`harmonia-ci worker <role>`).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../lib/log.ts';
import { createBuilderActivities } from '../activities/builder/index.ts';
import { createExecutor } from '../daemon/executor/executor.ts';
import { createDatabaseLogSink } from '../activities/builder/log-sink.ts';
import { createCoordinatorActivities } from '../activities/coordinator/index.ts';
import { createEvaluatorActivities } from '../activities/evaluator/index.ts';
import type { ServerConfig } from '../config/types.ts';
import { DaemonPool } from '../daemon/protocol/pool.ts';
import { createBuilderWorkers, createCoordinatorWorker, createEvaluatorWorker, runWorkers } from '../workers/roles.ts';
import type { LocalStack } from './stack.ts';

export interface LocalWorkers {
  host: string;
  stop(): Promise<void>;
}

/** A host name usable in node names and task queue names. */
export function builderHostName(): string {
  return hostname().replace(/[^A-Za-z0-9._-]/g, '-') || 'localhost';
}

export interface LocalWorkersOptions {
  stack: LocalStack;
  config: ServerConfig;
  log: Logger;
  /** Which roles run in this process (default: all three); the builder under `host` (default: the machine's). */
  coordinator?: boolean;
  evaluator?: boolean;
  builder?: boolean;
  host?: string;
  builderHeartbeatTimeoutMs?: number;
}

export async function startLocalWorkers({
  stack,
  config,
  log,
  coordinator: withCoordinator = true,
  evaluator: withEvaluator = true,
  builder: withBuilder = true,
  host = builderHostName(),
  builderHeartbeatTimeoutMs,
}: LocalWorkersOptions): Promise<LocalWorkers> {
  const pool = stack.database.pool;
  const daemon = new DaemonPool({ socketPath: stack.daemonSocket, maxConnections: config.builder.maxJobs + 2 });
  const ctx = { connection: stack.workerConnection, namespace: stack.namespace, bundleDir: join(config.stateDir, 'bundles') };

  const coordinator = createCoordinatorActivities({
    pool,
    client: stack.client,
    defaults: { attrs: [], allowIfd: true, evalTimeoutMs: config.limits.evalTimeout, systems: config.builder.systems },
    builderHeartbeatTimeoutMs,
  });
  const evaluator = createEvaluatorActivities({
    pool,
    isValid: async (paths) => new Set(paths.length === 0 ? [] : await daemon.use((c) => c.queryValidPaths(paths))),
  });
  const builder = createBuilderActivities({
    host,
    executor: await createExecutor({
      pool: daemon,
      rootsDir: join(config.stateDir, 'gcroots'),
      limits: {
        wallClockMs: config.limits.buildTimeout,
        maxSilenceMs: config.limits.maxSilent,
        maxLogBytes: config.limits.maxLogSize,
        maxOutputBytes: config.limits.maxOutputSize,
      },
    }),
    logs: createDatabaseLogSink(pool),
    publish: async () => undefined,
  });

  const workers = [
    ...(withCoordinator ? [await createCoordinatorWorker(ctx, coordinator)] : []),
    ...(withEvaluator ? [await createEvaluatorWorker(ctx, evaluator)] : []),
    ...(withBuilder
      ? await createBuilderWorkers(ctx, builder, {
          host,
          systems: config.builder.systems,
          features: config.builder.features,
          maxJobs: config.builder.maxJobs,
        })
      : []),
  ];
  const running = runWorkers(workers);
  running.done.catch((error: Error) => log.error({ err: error }, 'a worker stopped with an error'));
  return {
    host,
    async stop() {
      await running.shutdown().catch(() => undefined);
      await daemon.close();
    },
  };
}
