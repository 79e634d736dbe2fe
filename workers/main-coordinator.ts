/**
 * The coordinator role (`harmonia-ci worker coordinator`): every workflow, and the control
 * activities that hold the database and forge credentials.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../lib/log.ts';
import { createCoordinatorWorker, runWorkers, type WorkerContext } from './roles.ts';
import { coordinatorActivitiesFor, type RunningRole } from './wiring.ts';

export async function startCoordinatorRole(options: {
  config: ServerConfig;
  ctx: WorkerContext;
  client: Client;
  pool: Pool;
  log: Logger;
}): Promise<RunningRole> {
  const activities = coordinatorActivitiesFor(options.config, { pool: options.pool, client: options.client, log: options.log });
  return runRole(runWorkers([await createCoordinatorWorker(options.ctx, activities)]));
}

/** A role from running workers: `done` rejects only when a worker fails. */
export function runRole(running: ReturnType<typeof runWorkers>): RunningRole {
  const done = running.done.then(() => new Promise<never>(() => undefined));
  done.catch(() => undefined);
  return { done, stop: () => running.shutdown() };
}
