/** The deployments of a project, newest first, for its dashboard page. */
import type { Pool } from 'pg';

export interface DeploymentRow {
  id: string;
  environment: string;
  evalId: string | null;
  attr: string;
  storePath: string;
  status: string;
  approvedBy: string | null;
  reason: string | null;
  log: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/** The latest `limit` deployments of `projectName`, every environment together. */
export async function listProjectDeployments(pool: Pool, projectName: string, limit = 20): Promise<DeploymentRow[]> {
  const { rows } = await pool.query<DeploymentRow>(
    `SELECT d.id::text AS id, d.environment, d.eval_id::text AS "evalId", d.attr, d.store_path AS "storePath", d.status,
            d.approved_by AS "approvedBy", d.reason, d.log,
            to_json(d.created_at)#>>'{}' AS "createdAt", to_json(d.finished_at)#>>'{}' AS "finishedAt"
       FROM deployments d JOIN projects p ON p.id = d.project_id
      WHERE p.name = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2`,
    [projectName, limit],
  );
  return rows;
}
