/**
 * The coordinator's deploy activities: which deployments an eval triggers (the targets of the
 * server configuration whose job succeeded on their ref), the `deployments` rows, and the
 * conversation with the agents (deploy/client.ts). Secrets are read here, never put in workflow
 * history.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { DeploymentTarget } from '../../config/types.ts';
import { AgentRefused, AgentUnreachable, DeployAgentClient } from '../../deploy/client.ts';
import type { Forges } from '../../forges/types.ts';
import type { Logger } from '../../lib/log.ts';
import { COORDINATOR_QUEUE, deploySignal, deployWorkflowId } from '../../workflows/definitions.ts';
import type { deployWorkflow } from '../../workflows/deploy.ts';
import { createForgeDeploymentReporter } from '../coordinator/forge-deployment.ts';
import type { DeployActivities, DeploymentOutcome, DeploymentStart } from './types.ts';

export interface DeployDeps {
  pool: Pool;
  client: Client;
  targets: readonly DeploymentTarget[];
  /** Where agents fetch closures and the key they trust, for targets that name none. */
  defaultCacheUrl?: string;
  defaultPublicKey?: string;
  /** Configured forges, for forge deployments (none: no forge deployments). */
  forges?: Forges;
  /** Base of the dashboard links in forge deployments (`api.public-url`). */
  publicUrl?: string;
  log?: Logger;
}

const POLL_INTERVAL_MS = 2000;

interface DeploymentRow {
  id: string;
  project: string;
  environment: string;
  store_path: string;
}

export function createDeployActivities(deps: DeployDeps): DeployActivities {
  const targetOf = (project: string, environment: string): DeploymentTarget => {
    const target = deps.targets.find((t) => t.project === project && t.environment === environment);
    if (!target) throw ApplicationFailure.nonRetryable(`no deployment of ${project} to ${environment} is configured any more`, 'DeploymentMisconfigured');
    return target;
  };
  const rowOf = async (deploymentId: string): Promise<DeploymentRow> => {
    const { rows } = await deps.pool.query<DeploymentRow>(
      `SELECT d.id::text, p.name AS project, d.environment, d.store_path FROM deployments d JOIN projects p ON p.id = d.project_id WHERE d.id = $1`,
      [deploymentId],
    );
    if (!rows[0]) throw ApplicationFailure.nonRetryable(`deployment ${deploymentId} does not exist`, 'DeploymentMisconfigured');
    return rows[0];
  };
  const clientOf = async (target: DeploymentTarget): Promise<DeployAgentClient> =>
    new DeployAgentClient(target.agentUrl, Buffer.from(await target.secretFile.read()));
  const asFailure = (error: unknown): unknown => {
    if (error instanceof AgentRefused) return ApplicationFailure.nonRetryable(error.message, 'AgentRefused');
    if (error instanceof AgentUnreachable) return ApplicationFailure.retryable(error.message, 'AgentUnreachable');
    return error;
  };

  return {
    async planDeployments(evalId) {
      const { rows: evals } = await deps.pool.query<{ project_id: string; project: string; ref: string }>(
        `SELECT e.project_id::text, p.name AS project, e.ref FROM evaluations e JOIN projects p ON p.id = e.project_id WHERE e.id = $1`,
        [evalId],
      );
      const evaluation = evals[0];
      if (!evaluation) return 0;
      let started = 0;
      for (const target of deps.targets.filter((t) => t.project === evaluation.project && t.ref === evaluation.ref)) {
        // The job's output, if the job succeeded: every build this eval planned for it succeeded (or none was needed).
        const { rows: jobs } = await deps.pool.query<{ out_path: string }>(
          `SELECT o.out_path FROM eval_attrs a
             JOIN derivation_outputs o ON o.drv_path = a.drv_path AND o.output_name = 'out'
            WHERE a.eval_id = $1 AND a.attr = $2 AND o.out_path IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id
                               WHERE eb.eval_id = a.eval_id AND b.drv_path = a.drv_path AND b.status <> 'succeeded')`,
          [evalId, target.job],
        );
        const storePath = jobs[0]?.out_path;
        if (!storePath) continue;
        const workflowId = deployWorkflowId(evaluation.project, target.environment);
        const { rows } = await deps.pool.query<{ id: string }>(
          `WITH inserted AS (
             INSERT INTO deployments (project_id, environment, eval_id, attr, store_path, workflow_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (eval_id, environment) DO NOTHING RETURNING id)
           SELECT id::text FROM inserted UNION ALL SELECT id::text FROM deployments WHERE eval_id = $3 AND environment = $2`,
          [evaluation.project_id, target.environment, evalId, target.job, storePath, workflowId],
        );
        const start: DeploymentStart = { deploymentId: rows[0]!.id, storePath, approval: target.approval, timeoutMs: target.timeout };
        await deps.client.workflow.signalWithStart<typeof deployWorkflow, [DeploymentStart]>('deployWorkflow', {
          workflowId,
          taskQueue: COORDINATOR_QUEUE,
          args: [{ project: evaluation.project, environment: target.environment }],
          signal: deploySignal,
          signalArgs: [start],
        });
        started++;
      }
      return started;
    },

    async recordDeployment(deploymentId, update) {
      const final = !['pending', 'awaiting-approval', 'sent', 'running'].includes(update.status);
      await deps.pool.query(
        `UPDATE deployments SET status = $2, reason = COALESCE($3, reason), log = COALESCE($4, log),
                approved_by = COALESCE($5, approved_by), updated_at = now(),
                finished_at = CASE WHEN $6 THEN now() ELSE finished_at END
          WHERE id = $1`,
        [deploymentId, update.status, update.reason ?? null, update.log ?? null, update.approvedBy ?? null, final],
      );
    },

    reportForgeDeployment: createForgeDeploymentReporter(deps),

    async requestDeployment(deploymentId) {
      const row = await rowOf(deploymentId);
      const target = targetOf(row.project, row.environment);
      const cacheUrl = target.cacheUrl ?? deps.defaultCacheUrl;
      const publicKey = target.publicKey ?? deps.defaultPublicKey;
      if (!cacheUrl || !publicKey) {
        throw ApplicationFailure.nonRetryable(`the deployment of ${row.project} to ${row.environment} needs cache-url and public-key: set them in its [[deployments]] table`, 'DeploymentMisconfigured');
      }
      try {
        const agent = await clientOf(target);
        const report = await agent.deploy({ deploymentId, project: row.project, environment: row.environment, storePath: row.store_path, cacheUrl, publicKey });
        if (!report) throw new AgentUnreachable(`the deploy agent at ${target.agentUrl} gave no answer`);
        return toOutcome(report);
      } catch (error) {
        throw asFailure(error);
      }
    },

    async awaitDeploymentReport(deploymentId, deadline) {
      const row = await rowOf(deploymentId);
      const agent = await clientOf(targetOf(row.project, row.environment));
      let lastProblem = '';
      while (Date.now() < deadline) {
        Context.current().heartbeat();
        try {
          const report = await agent.status(deploymentId);
          if (report && report.outcome !== 'running') return toOutcome(report);
          if (!report) lastProblem = 'the agent does not know the deployment';
        } catch (error) {
          if (!(error instanceof AgentUnreachable)) throw asFailure(error);
          // The agent restarting is part of a deployment: keep asking until the deadline.
          lastProblem = error.message;
        }
        await Context.current().sleep(POLL_INTERVAL_MS);
      }
      throw ApplicationFailure.nonRetryable(`the deploy agent did not report within the deadline${lastProblem ? ` (${lastProblem})` : ''}`, 'DeploymentTimedOut');
    },
  };
}

function toOutcome(report: { outcome: DeploymentOutcome['status'] | 'running'; reason?: string; log: string }): DeploymentOutcome {
  return { status: report.outcome, ...(report.reason ? { reason: report.reason } : {}), ...(report.log ? { log: report.log } : {}) };
}
