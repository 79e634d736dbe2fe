/**
 * Starting build workflows for the scheduler (scheduler.ts decides which): one per derivation
 * across all evals, started or, when it runs already, subscribed to, so an eval that needs a
 * build another eval started subscribes to it instead of starting a second one.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { buildWorkflow } from '../../workflows/build.ts';
import { buildWorkflowId, COORDINATOR_QUEUE, subscribeSignal } from '../../workflows/definitions.ts';
import { searchAttributePairs } from '../../workflows/search.ts';
import type { BuildInputs } from '../types.ts';
import { toBuilderInputs, type BuilderInputRow } from './build-inputs.ts';

/** Workflow starts in flight at once from one pass. */
const START_CONCURRENCY = 16;

/** A build the scheduler found ready, with what its workflow needs to be started. */
export interface BuildCandidate {
  id: string;
  drv_path: string;
  name: string;
  system: string;
  required_system_features: string[];
  /** The eval's project and its scheduling shares (fair sharing of builders). */
  project: string;
  scheduling_shares: number;
  /** The project has used more than its share of recent builder time (`overShare`). */
  over_share: boolean;
  priority: number;
  /**
   * For a first run (its row as `beginBuild` would leave it, scheduler.ts `FIRST_RUN_COLUMN`): the
   * builder's inputs as `beginBuild` would answer them; null otherwise.
   */
  begun: BuilderInputRow | null;
}

export interface StartOptions {
  evalId: string;
  evalWorkflowId: string;
  /** A builder silent this long is presumed dead (default: the build workflow's). */
  heartbeatTimeoutMs?: number | undefined;
  /** Attempts for infrastructure faults (`limits.attempts`). */
  maxAttempts?: number | undefined;
  /** How long built outputs may wait for storage (`limits.publish-deadline`). */
  publishDeadlineMs?: number | undefined;
  /** Builds at or above this priority are manual rebuilds: dispatched before all others. */
  urgentFrom: number;
}

/** Fairness weight of a project: its shares relative to the default 100, within Temporal's range. */
export function fairnessWeight(shares: number): number {
  return Math.min(1000, Math.max(0.001, shares / 100));
}

/**
 * Whether project `project` (an SQL expression) has used more than its share of the recent builder
 * time (decayed by 0.95 per hour, `project_fairness`): more than its scheduling shares' fraction of
 * all enabled projects' shares, i.e. more seconds per share than the fleet as a whole. Builds it
 * starts then wait behind those of projects that have not (workflows/build.ts, `buildPriority`).
 * Products rather than quotients: a project alone is exactly at its share, never over it.
 */
export function overShare(project: string): string {
  return `SELECT f.builder_seconds * t.shares > t.seconds * f.scheduling_shares AS over_share
            FROM project_fairness f,
                 (SELECT sum(a.builder_seconds) AS seconds, sum(a.scheduling_shares) AS shares
                    FROM project_fairness a JOIN projects ap ON ap.id = a.project_id
                   WHERE ap.enabled OR ap.id = ${project}) t
           WHERE f.project_id = ${project}`;
}

/** Starts (or joins) each build's workflow with the eval as a subscriber, and records both. */
export async function startBuilds(pool: Pool, client: Client, options: StartOptions, candidates: BuildCandidate[]): Promise<void> {
  const { evalId, evalWorkflowId, heartbeatTimeoutMs, maxAttempts, publishDeadlineMs } = options;
  const queue = [...candidates];
  const started: Array<{ id: string; workflowId: string }> = [];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const workflowId = buildWorkflowId(next.drv_path);
      const args: Parameters<typeof buildWorkflow> = [
        {
          drvPath: next.drv_path,
          drvName: next.name,
          system: next.system,
          requiredSystemFeatures: next.required_system_features,
          subscribers: [evalWorkflowId],
          ...(heartbeatTimeoutMs ? { heartbeatTimeoutMs } : {}),
          ...(maxAttempts ? { maxAttempts } : {}),
          ...(publishDeadlineMs ? { publishDeadlineMs } : {}),
          // Fairness keys are at most 64 bytes.
          fairness: { key: Buffer.from(next.project).subarray(0, 64).toString(), weight: fairnessWeight(next.scheduling_shares) },
          ...(next.priority >= options.urgentFrom ? { urgent: true } : {}),
          ...(next.over_share ? { overShare: true } : {}),
        },
      ];
      await startOrSubscribe(client, workflowId, evalWorkflowId, next.begun ? toBuilderInputs(next.begun) : undefined, {
        args,
        typedSearchAttributes: searchAttributePairs({ drvName: next.name, system: next.system, status: 'pending' }) as never,
        staticSummary: `build ${next.name} (${next.system})`,
      });
      started.push({ id: next.id, workflowId });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(START_CONCURRENCY, queue.length) }, worker));
  } finally {
    if (started.length > 0) {
      const ids = started.map((s) => s.id);
      // One statement: on the embedded database every round trip waits for the one connection.
      await pool.query(
        `WITH subscribed AS (
           UPDATE evaluation_builds SET subscribed_at = now() WHERE eval_id = $1 AND build_id = ANY($2::bigint[])
         )
         UPDATE build_jobs b SET workflow_id = u.workflow_id
           FROM unnest($2::bigint[], $3::text[]) AS u(id, workflow_id)
          WHERE b.id = u.id AND b.workflow_id IS NULL`,
        [evalId, ids, started.map((s) => s.workflowId)],
      );
    }
  }
}

/** Tries of start-or-subscribe: a build workflow that ends between the two calls is started again. */
const START_TRIES = 3;

/**
 * Starts the build's workflow with the eval as its first subscriber, or, when it runs already,
 * subscribes the eval to it. A start (unlike signal-with-start) may be eager: when this process
 * starts it through the native connection of its own coordinator worker (`run`, `dev`), the
 * server hands the workflow's first task straight back to that worker instead of through the
 * task queue, which takes a task round trip off the way from one build to the next.
 *
 * `begun` (the builder's inputs, read with the build found ready) goes only to the first run the
 * workflow id ever had: that start rejects any earlier run, running or closed. An earlier run
 * may have ended with a result since the build was found ready, and a new run must repeat that
 * result rather than build again; without `begun` it asks `beginBuild`, which knows.
 */
async function startOrSubscribe(
  client: Client,
  workflowId: string,
  evalWorkflowId: string,
  begun: BuildInputs | undefined,
  options: { args: Parameters<typeof buildWorkflow>; typedSearchAttributes: never; staticSummary: string },
): Promise<void> {
  const start = (extra: { args?: Parameters<typeof buildWorkflow>; workflowIdReusePolicy?: 'REJECT_DUPLICATE' } = {}) =>
    client.workflow.start<typeof buildWorkflow>('buildWorkflow', {
      ...options,
      ...extra,
      workflowId,
      taskQueue: COORDINATOR_QUEUE,
      // Only a worker's own (native) connection can take the first task back; through another,
      // the task would wait out its timeout on the server.
      requestEagerStart: client.connection instanceof NativeConnection,
    });
  if (begun) {
    try {
      await start({ args: [{ ...options.args[0], begun }], workflowIdReusePolicy: 'REJECT_DUPLICATE' });
      return;
    } catch (error) {
      // A run exists or existed: start or subscribe as for any build.
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      return;
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
    try {
      await client.workflow.getHandle(workflowId).signal(subscribeSignal, evalWorkflowId);
      return;
    } catch (error) {
      // It ended meanwhile: a new run is started, as signal-with-start would have.
      if (!(error instanceof WorkflowNotFoundError) || attempt >= START_TRIES) throw error;
    }
  }
}
