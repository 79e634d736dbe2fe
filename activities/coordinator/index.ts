/** The coordinator's activities: PostgreSQL bookkeeping and Temporal starts for the workflows. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { createForgePoller } from '../../forges/poll.ts';
import type { Forges } from '../../forges/types.ts';
import type { Logger } from '../../lib/log.ts';
import type { EvalSettings } from '../../workflows/types.ts';
import type { CoordinatorActivities } from '../types.ts';
import { createBuildActivities } from './build-records.ts';
import { createEvalActivities } from './evals.ts';
import { createForgeStatusReporter } from './forge-status.ts';
import { createNodeActivities } from './node-records.ts';
import { advanceEval, releaseEvalBuilds, resetBuilds } from './scheduler.ts';

export interface CoordinatorDeps {
  pool: Pool;
  client: Client;
  /** Eval settings for projects that set none. */
  defaults: EvalSettings;
  /** How long a silent builder is trusted before its build goes elsewhere. */
  builderHeartbeatTimeoutMs?: number;
  /** Attempts of a build for infrastructure faults (`limits.attempts`). */
  buildAttempts?: number;
  /** How long a built output may wait for storage before its build fails (`limits.publish-deadline`). */
  publishDeadlineMs?: number;
  /** Configured forges, for commit statuses and polling (none: forge projects get no statuses). */
  forges?: Forges;
  /** Base of the dashboard links in commit statuses (`api.public-url`). */
  publicUrl?: string;
  log?: Logger;
}

export function createCoordinatorActivities(deps: CoordinatorDeps): CoordinatorActivities {
  return {
    ...createEvalActivities(deps),
    ...createBuildActivities({
      pool: deps.pool,
      client: deps.client,
      settings: { heartbeatTimeoutMs: deps.builderHeartbeatTimeoutMs, maxAttempts: deps.buildAttempts, publishDeadlineMs: deps.publishDeadlineMs },
      warn: (message) => deps.log?.warn(message),
    }),
    ...createNodeActivities(deps),
    advanceEval: (request) =>
      advanceEval(deps.pool, deps.client, request, {
        heartbeatTimeoutMs: deps.builderHeartbeatTimeoutMs,
        maxAttempts: deps.buildAttempts,
        publishDeadlineMs: deps.publishDeadlineMs,
        warn: (message) => deps.log?.warn(message),
      }),
    resetBuilds: (evalId, drvPaths) => resetBuilds(deps.pool, evalId, drvPaths),
    releaseEvalBuilds: (evalId, evalWorkflowId) => releaseEvalBuilds(deps.pool, deps.client, evalId, evalWorkflowId),
    reportEvalStatus: createForgeStatusReporter(deps),
    pollProject: createForgePoller(deps),
  };
}
