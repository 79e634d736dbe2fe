/**
 * The evaluator role (`harmonia-ci worker evaluator`): evaluations on the `eval` queue, on a
 * host with a Nix store; the evaluator subprocesses inherit no credentials. Builders may not share
 * its store, so it publishes the `.drv` files and sources of what is to be built to our cache
 * (activities/evaluator/closure.ts), uploading from its own host queue `host-evaluator-<host>`.
 */
import type { Pool } from 'pg';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../lib/log.ts';
import { runRole } from './main-coordinator.ts';
import { instrumentEvaluator, type WorkerMetrics } from './metrics.ts';
import { createEvaluatorWorker, createHostWorker, runWorkers, type WorkerContext } from './roles.ts';
import { createDaemonPool, evaluatorActivitiesFor, evaluatorClosureFor, type RunningRole } from './wiring.ts';

/** Uploads of one evaluator host at once. */
const UPLOAD_SLOTS = 4;

export async function startEvaluatorRole(options: {
  config: ServerConfig;
  ctx: WorkerContext;
  pool: Pool;
  daemonSocket: string;
  host: string;
  log: Logger;
  /** Counts evaluations, their time and jobs (`--metrics-port`). */
  metrics?: WorkerMetrics | undefined;
}): Promise<RunningRole> {
  const daemon = createDaemonPool(options.config, options.daemonSocket);
  try {
    const closure = await evaluatorClosureFor(options.config, { daemon, host: options.host, log: options.log });
    const activities = evaluatorActivitiesFor(options.config, { pool: options.pool, daemon, log: options.log, closure });
    const worker = await createEvaluatorWorker(options.ctx, instrumentEvaluator(activities, options.metrics));
    const hostWorker = await createHostWorker(options.ctx, closure.uploads, { host: closure.host, systems: [], features: [], maxJobs: UPLOAD_SLOTS });
    const role = runRole(runWorkers([worker, hostWorker]));
    return {
      done: role.done,
      async stop() {
        await role.stop();
        await daemon.close();
      },
    };
  } catch (error) {
    await daemon.close();
    throw error;
  }
}
