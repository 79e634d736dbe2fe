/** The forge layer's SQL: repositories and projects as webhooks see them, and the delivery outbox. */
import type { Pool } from 'pg';
import type { Intent, PayloadRepository } from './webhooks.ts';
import type { DiscoveredRepository, ForgeKind } from './types.ts';

export type PrTrust = 'everyone' | 'collaborators' | 'none';

/** A project and the repository it builds, with what the forge API needs to address it. */
export interface ProjectRepository {
  projectId: string;
  projectName: string;
  enabled: boolean;
  prTrust: PrTrust;
  pollIntervalMs: number | null;
  hookId: number | null;
  repositoryId: string;
  forge: ForgeKind;
  owner: string;
  name: string;
  cloneUrl: string;
  defaultBranch: string;
  installationId: number | null;
}

const PROJECT_COLUMNS = `p.id AS project_id, p.name AS project_name, p.enabled, p.pr_trust,
       (extract(epoch FROM p.poll_interval) * 1000)::bigint AS poll_ms, p.forge_hook_id,
       r.id AS repository_id, r.forge, r.owner, r.name, r.clone_url, r.default_branch, r.forge_installation_id`;

interface ProjectRow {
  project_id: string;
  project_name: string;
  enabled: boolean;
  pr_trust: PrTrust;
  poll_ms: string | null;
  forge_hook_id: string | null;
  repository_id: string;
  forge: ForgeKind;
  owner: string;
  name: string;
  clone_url: string;
  default_branch: string;
  forge_installation_id: string | null;
}

function toProject(row: ProjectRow): ProjectRepository {
  return {
    projectId: String(row.project_id),
    projectName: row.project_name,
    enabled: row.enabled,
    prTrust: row.pr_trust,
    pollIntervalMs: row.poll_ms === null ? null : Number(row.poll_ms),
    hookId: row.forge_hook_id === null ? null : Number(row.forge_hook_id),
    repositoryId: String(row.repository_id),
    forge: row.forge,
    owner: row.owner,
    name: row.name,
    cloneUrl: row.clone_url,
    defaultBranch: row.default_branch,
    installationId: row.forge_installation_id === null ? null : Number(row.forge_installation_id),
  };
}

/** The project of the repository a webhook names (by the forge's id, else by owner and name). */
export async function findWebhookProject(pool: Pool, forge: ForgeKind, repo: PayloadRepository): Promise<ProjectRepository | undefined> {
  const { rows } = await pool.query<ProjectRow>(
    `SELECT ${PROJECT_COLUMNS} FROM repositories r JOIN projects p ON p.repository_id = r.id
      WHERE r.forge = $1 AND (r.forge_repository_id = $2 OR (lower(r.owner) = lower($3) AND lower(r.name) = lower($4)))
      ORDER BY (r.forge_repository_id = $2) DESC NULLS LAST LIMIT 1`,
    [forge, repo.forgeId ?? null, repo.owner, repo.name],
  );
  const project = rows[0] ? toProject(rows[0]) : undefined;
  if (project && repo.installationId !== undefined && repo.installationId !== project.installationId) {
    // Webhooks carry the installation: keep it current for status reports and token minting.
    await pool.query('UPDATE repositories SET forge_installation_id = $2, updated_at = now() WHERE id = $1', [
      project.repositoryId,
      repo.installationId,
    ]);
    project.installationId = repo.installationId;
  }
  return project;
}

/** A project by its id or name. */
export async function findProject(pool: Pool, key: { id?: string; name?: string }): Promise<ProjectRepository | undefined> {
  const { rows } = await pool.query<ProjectRow>(
    `SELECT ${PROJECT_COLUMNS} FROM projects p JOIN repositories r ON r.id = p.repository_id WHERE p.id = $1 OR p.name = $2`,
    [key.id ?? null, key.name ?? null],
  );
  return rows[0] ? toProject(rows[0]) : undefined;
}

/** Records discovered repositories (new ones inserted, known ones updated); returns how many. */
export async function upsertRepositories(pool: Pool, repos: DiscoveredRepository[]): Promise<number> {
  for (const repo of repos) {
    await pool.query(
      `INSERT INTO repositories (forge, owner, name, clone_url, default_branch, forge_repository_id, forge_installation_id, private)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (forge, lower(owner), lower(name)) DO UPDATE
         SET owner = excluded.owner, name = excluded.name, clone_url = excluded.clone_url,
             default_branch = excluded.default_branch, forge_repository_id = excluded.forge_repository_id,
             forge_installation_id = coalesce(excluded.forge_installation_id, repositories.forge_installation_id),
             private = excluded.private, updated_at = now()`,
      [repo.forge, repo.owner, repo.name, repo.cloneUrl, repo.defaultBranch, repo.forgeId, repo.installationId ?? null, repo.private],
    );
  }
  return repos.length;
}

/** Forgets the installation of repositories the GitHub App no longer reaches. */
export async function forgetInstallation(pool: Pool, installationId: number, repositoryIds?: number[]): Promise<void> {
  await pool.query(
    `UPDATE repositories SET forge_installation_id = NULL, updated_at = now()
      WHERE forge = 'github' AND forge_installation_id = $1 AND ($2::bigint[] IS NULL OR forge_repository_id = ANY($2::bigint[]))`,
    [installationId, repositoryIds ?? null],
  );
}

export interface DeliveryRecord {
  forge: ForgeKind;
  deliveryId: string;
  event: string;
  projectId: string;
  ref: string;
  intent: Intent;
}

/**
 * Stores a delivery for the dispatcher; false when the same delivery was stored before. A
 * redelivery of a parked delivery replaces it, queued behind the ref's later deliveries: that is
 * how people retry one once its cause is fixed.
 */
export async function recordDelivery(pool: Pool, delivery: DeliveryRecord): Promise<boolean> {
  await pool.query(`DELETE FROM forge_deliveries WHERE forge = $1 AND delivery_id = $2 AND status = 'parked'`, [delivery.forge, delivery.deliveryId]);
  const { rowCount } = await pool.query(
    `INSERT INTO forge_deliveries (forge, delivery_id, event, project_id, ref, intent) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (forge, delivery_id) DO NOTHING`,
    [delivery.forge, delivery.deliveryId, delivery.event, delivery.projectId, delivery.ref, delivery.intent],
  );
  return rowCount === 1;
}
