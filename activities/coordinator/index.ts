/** The coordinator's activities: PostgreSQL bookkeeping and Temporal starts for the workflows. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { EvalSettings } from '../../workflows/types.ts';
import type { CoordinatorActivities } from '../types.ts';
import { advanceEval } from './advance.ts';
import { createBuildActivities } from './builds.ts';
import { createEvalActivities } from './evals.ts';
import { createForgeStatusReporter } from './forge-status.ts';

export interface CoordinatorDeps {
  pool: Pool;
  client: Client;
  /** Eval settings for projects that set none. */
  defaults: EvalSettings;
  /** How long a silent builder is trusted before its build goes elsewhere. */
  builderHeartbeatTimeoutMs?: number;
}

export function createCoordinatorActivities(deps: CoordinatorDeps): CoordinatorActivities {
  return {
    ...createEvalActivities(deps),
    ...createBuildActivities(deps),
    advanceEval: (request) => advanceEval(deps.pool, deps.client, request, deps.builderHeartbeatTimeoutMs),
    reportEvalStatus: createForgeStatusReporter(deps),
  };
}
