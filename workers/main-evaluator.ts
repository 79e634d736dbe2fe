/**
 * The evaluator role (`harmonia-ci worker evaluator`): evaluations on the `eval` queue, on a
 * host with a Nix store; the evaluator subprocesses inherit no credentials.
 */
import type { Pool } from 'pg';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../lib/log.ts';
import { runRole } from './main-coordinator.ts';
import { createEvaluatorWorker, runWorkers, type WorkerContext } from './roles.ts';
import { createDaemonPool, evaluatorActivitiesFor, type RunningRole } from './wiring.ts';

export async function startEvaluatorRole(options: {
  config: ServerConfig;
  ctx: WorkerContext;
  pool: Pool;
  daemonSocket: string;
  log: Logger;
}): Promise<RunningRole> {
  const daemon = createDaemonPool(options.config, options.daemonSocket);
  try {
    const worker = await createEvaluatorWorker(options.ctx, evaluatorActivitiesFor(options.config, { pool: options.pool, daemon, log: options.log }));
    const role = runRole(runWorkers([worker]));
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
