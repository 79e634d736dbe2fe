/**
 * Forge deployments, computed from what PostgreSQL says about a `deployments` row, the way
 * forge-status.ts sends commit statuses: the first report creates the forge's deployment for the
 * eval's commit and remembers its id, each later one sends the row's state as a deployment status
 * when it differs from the last one sent. A forge outage or rate limit throws a retryable failure
 * (after retry-after when given); the retry sends the state as it is then. Forges without a
 * deployments API (Gitea) and local projects get none.
 */
import type { Pool } from 'pg';
import { describeDeployment } from '../../forges/deployments.ts';
import { ForgeNotConfiguredError } from '../../forges/errors.ts';
import { asActivityFailure } from '../../forges/retry.ts';
import type { Forges, RepositoryRef } from '../../forges/types.ts';
import type { Logger } from '../../lib/log.ts';
import type { DeploymentStatus } from '../deploy/types.ts';

/** Sends a deployment's state to its project's forge. */
export type ForgeDeploymentReporter = (deploymentId: string) => Promise<void>;

export interface ForgeDeploymentDeps {
  pool: Pool;
  forges?: Forges;
  /** Base of the dashboard links (`api.public-url`). */
  publicUrl?: string;
  log?: Logger;
}

interface DeploymentRow {
  status: DeploymentStatus;
  environment: string;
  store_path: string;
  reason: string | null;
  approved_by: string | null;
  forge_deployment_id: string | null;
  forge_state: string | null;
  forge_description: string | null;
  commit_sha: string | null;
  project: string;
  forge: string;
  owner: string;
  name: string;
  forge_installation_id: string | null;
}

export function createForgeDeploymentReporter(deps: ForgeDeploymentDeps): ForgeDeploymentReporter {
  return async (deploymentId) => {
    const { rows } = await deps.pool.query<DeploymentRow>(
      `SELECT d.status, d.environment, d.store_path, d.reason, d.approved_by, d.forge_deployment_id, d.forge_state, d.forge_description,
              e.commit_sha, p.name AS project, r.forge, r.owner, r.name, r.forge_installation_id
         FROM deployments d JOIN projects p ON p.id = d.project_id JOIN repositories r ON r.id = p.repository_id
         LEFT JOIN evaluations e ON e.id = d.eval_id
        WHERE d.id = $1`,
      [deploymentId],
    );
    const row = rows[0];
    if (!row || row.forge === 'local' || row.commit_sha === null) return;
    const forge = deps.forges?.[row.forge as 'github' | 'gitea'];
    if (!forge) {
      // Nothing can deliver it until the forge is configured; retrying would only delay the others.
      deps.log?.warn({ deploymentId, forge: row.forge }, `forge deployment not sent: ${new ForgeNotConfiguredError(row.forge).message}`);
      return;
    }
    if (!forge.createDeployment || !forge.setDeploymentStatus) return;
    const desired = describeDeployment({ status: row.status, storePath: row.store_path, reason: row.reason, approvedBy: row.approved_by });
    if (row.forge_state === desired.state && row.forge_description === desired.description) return;
    const repo: RepositoryRef = {
      owner: row.owner,
      name: row.name,
      installationId: row.forge_installation_id === null ? null : Number(row.forge_installation_id),
    };
    const logUrl = `${(deps.publicUrl ?? 'http://localhost:8080').replace(/\/+$/, '')}/ci/projects/${row.project}`;
    try {
      let forgeId = row.forge_deployment_id === null ? undefined : Number(row.forge_deployment_id);
      if (forgeId === undefined) {
        forgeId = await forge.createDeployment(repo, {
          sha: row.commit_sha,
          environment: row.environment,
          description: `${row.project}: ${row.store_path}`.slice(0, 140),
        });
        await deps.pool.query('UPDATE deployments SET forge_deployment_id = $2 WHERE id = $1', [deploymentId, forgeId]);
      }
      await forge.setDeploymentStatus(repo, forgeId, { ...desired, logUrl });
    } catch (error) {
      const failure = asActivityFailure(error);
      if (failure) throw failure;
      // A permanent refusal (no access, commit unknown): retrying cannot help.
      deps.log?.warn({ err: error, deploymentId }, 'the forge refused a deployment or its status');
      return;
    }
    await deps.pool.query('UPDATE deployments SET forge_state = $2, forge_description = $3 WHERE id = $1', [deploymentId, desired.state, desired.description]);
  };
}
