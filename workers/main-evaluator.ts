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
}): Promise<RunningRole> {
  const daemon = createDaemonPool(options.config, options.daemonSocket);
  try {
    const closure = await evaluatorClosureFor(options.config, { daemon, host: options.host, log: options.log });
    const worker = await createEvaluatorWorker(options.ctx, evaluatorActivitiesFor(options.config, { pool: options.pool, daemon, log: options.log, closure }));
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
