/**
 * The in-process workers of `dev` and `run`: coordinator, evaluator, signer and one builder (or
 * the roles `dev --roles` names), wired to the local stack. A fleet runs the same factories apart
 * (`harmonia-ci worker <role>`).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import type { Logger } from '../lib/log.ts';
import { openSigner } from '../activities/signer/setup.ts';
import { createDatabaseLogSink } from '../activities/builder/log-sink.ts';
import type { ServerConfig } from '../config/types.ts';
import { createBuilderWorkers, createCoordinatorWorker, createEvaluatorWorker, createHostWorker, createSignerWorker, runWorkers } from '../workers/roles.ts';
import { builderActivitiesFor, coordinatorActivitiesFor, createDaemonPool, evaluatorActivitiesFor, evaluatorClosureFor } from '../workers/wiring.ts';
import type { LocalStack } from './stack.ts';

/** Build tasks per max-jobs slot for a builder that publishes its own outputs (workers/roles.ts). */
export const LOCAL_TASKS_PER_SLOT = 4;

export interface LocalWorkers {
  host: string;
  /** The signer's public key (`name:base64`) and where its cache is, when a signer runs here. */
  cache?: { publicKey: string; description: string; keyCreated: boolean };
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
  /**
   * Run a signer for config.cache (default: where the coordinator runs, i.e. on one machine); without
   * a configured key one is kept under the state directory.
   */
  signer?: boolean;
  host?: string;
  builderHeartbeatTimeoutMs?: number;
  /**
   * The evaluator publishes the `.drv` closure of what is to be built to our cache, for builders
   * with stores of their own (`dev` without a builder). Off by default: a builder here, or one
   * beside it sharing the machine's nix-daemon, finds the `.drv` files in the store already.
   */
  publishClosure?: boolean;
}

/** Uploads of the in-process evaluator's closure at once, when no signer shares the process. */
const CLOSURE_UPLOAD_SLOTS = 4;

export async function startLocalWorkers({
  stack,
  config,
  log,
  coordinator: withCoordinator = true,
  evaluator: withEvaluator = true,
  builder: withBuilder = true,
  signer: withSigner = withCoordinator,
  host = builderHostName(),
  builderHeartbeatTimeoutMs,
  publishClosure = false,
}: LocalWorkersOptions): Promise<LocalWorkers> {
  const pool = stack.database.pool;
  const daemon = createDaemonPool(config, stack.daemonSocket);
  const ctx = { connection: stack.workerConnection, namespace: stack.namespace, bundleDir: join(config.stateDir, 'bundles'), dataConverter: stack.dataConverter };

  // Activities start and signal workflows through the workers' native (Rust) connection: cheaper per call than the JS gRPC client.
  const activityClient = new Client({ connection: stack.workerConnection, namespace: stack.namespace, ...(stack.dataConverter ? { dataConverter: stack.dataConverter } : {}) });
  const coordinator = coordinatorActivitiesFor(config, { pool, client: activityClient, log, builderHeartbeatTimeoutMs });
  const signer = withSigner ? await openSigner(config, { generateKey: true, warn: (message) => log.warn(message), store: daemon }) : undefined;
  const closure = publishClosure ? await evaluatorClosureFor(config, { daemon, host, signer, log }) : undefined;
  const evaluator = evaluatorActivitiesFor(config, { pool, daemon, log, signer, ...(closure ? { closure } : {}) });
  const builder = withBuilder
    ? await builderActivitiesFor(config, {
        host,
        daemon,
        logs: createDatabaseLogSink(pool),
        signer,
        // Beside the coordinator, a build's start is recorded directly instead of by signal.
        ...(withCoordinator ? { recordStart: (drvPath: string) => coordinator.recordBuild({ drvPath, status: 'building', builder: host }) } : {}),
      })
    : undefined;

  const workers = [
    ...(withCoordinator ? [await createCoordinatorWorker(ctx, coordinator)] : []),
    ...(withEvaluator ? [await createEvaluatorWorker(ctx, evaluator)] : []),
    ...(signer ? [await createSignerWorker(ctx, signer.activities)] : []),
    // Without a signer here the eval workflow hands the staged closure to the signer through this queue.
    ...(closure && !closure.publish
      ? [await createHostWorker(ctx, closure.uploads, { host: closure.host, systems: [], features: [], maxJobs: CLOSURE_UPLOAD_SLOTS })]
      : []),
    ...(builder
      ? await createBuilderWorkers(ctx, builder, {
          host,
          systems: config.builder.systems,
          features: config.builder.features,
          maxJobs: config.builder.maxJobs,
          // Beside a signer the builder publishes its own outputs: keep its slots busy meanwhile.
          ...(signer ? { tasksPerSlot: LOCAL_TASKS_PER_SLOT } : {}),
        })
      : []),
  ];
  const running = runWorkers(workers);
  running.done.catch((error: Error) => log.error({ err: error }, 'a worker stopped with an error'));
  return {
    host,
    ...(signer ? { cache: { publicKey: signer.key.publicKey, description: signer.backend.description, keyCreated: signer.key.created } } : {}),
    async stop() {
      await running.shutdown().catch(() => undefined);
      await daemon.close();
      await signer?.close();
    },
  };
}
