/**
 * Projects: which discovered repositories harmonia-ci builds, with their shares, PR trust and poll
 * interval. Shared by `harmonia-ci projects` and the `/api/projects` routes. Enabling a Gitea
 * repository registers its webhook; enabling with a poll interval starts the poll workflow.
 * `harmonia-ci run` registers the directory it runs in as a `local` repository and project.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { STATUS_MODES, type StatusMode } from '../config/repo-schema.ts';
import { COORDINATOR_QUEUE } from '../workflows/definitions.ts';
import { pollWorkflowId, type pollWorkflow } from '../workflows/poll.ts';
import { ProjectError } from './errors.ts';
import { findProject, upsertRepositories, type PrTrust, type ProjectRepository } from './store.ts';
import type { ForgeKind, Forges } from './types.ts';

export interface ProjectDeps {
  pool: Pool;
  forges: Forges;
  /** Needed to start and stop poll workflows. */
  client?: Client;
  /** Where forges reach our webhooks (`api.public-url`). */
  publicUrl: string;
  defaults: { prTrust: PrTrust; schedulingShares: number };
}

export interface EnableOptions {
  /** `owner/name` of the repository. */
  repository: string;
  forge?: ForgeKind;
  /** The project's name (default `owner/name`). */
  name?: string;
  prTrust?: PrTrust;
  schedulingShares?: number;
  /** Poll the default branch this often; null stops polling. */
  pollIntervalMs?: number | null;
  /** Per-attribute commit statuses of the project (`settings.statuses`); a repository's file may choose otherwise. */
  statuses?: StatusMode;
}

/** `all` is the command line's word for the schema's `everyone`. */
export function parsePrTrust(word: string): PrTrust {
  const value = word === 'all' ? 'everyone' : word;
  if (value === 'everyone' || value === 'collaborators' || value === 'none') return value;
  throw new ProjectError(`unknown PR trust "${word}": expected all (everyone), collaborators or none`);
}

/** A word of `--statuses`: summary, failures or all. */
export function parseStatusMode(word: string): StatusMode {
  const mode = STATUS_MODES.find((m) => m === word);
  if (!mode) throw new ProjectError(`unknown statuses "${word}": expected ${STATUS_MODES.join(', ')}`);
  return mode;
}

/** Discovers the repositories of every configured forge into `repositories`; returns how many. */
export async function syncRepositories(deps: Pick<ProjectDeps, 'pool' | 'forges'>): Promise<number> {
  let count = 0;
  for (const forge of [deps.forges.github, deps.forges.gitea]) {
    if (forge) count += await upsertRepositories(deps.pool, await forge.discover());
  }
  return count;
}

/** Enables (or updates) the project of a repository, discovering repositories first if it is unknown. */
export async function enableProject(deps: ProjectDeps, options: EnableOptions): Promise<ProjectRepository> {
  let repositoryId = await findRepository(deps.pool, options.repository, options.forge);
  if (repositoryId === undefined) {
    await syncRepositories(deps);
    repositoryId = await findRepository(deps.pool, options.repository, options.forge);
  }
  if (repositoryId === undefined) {
    throw new ProjectError(`no repository ${options.repository} on the configured forges: check that the GitHub App is installed on it or that the token can see it`);
  }
  const existing = await deps.pool.query<{ id: string }>('SELECT id FROM projects WHERE repository_id = $1 ORDER BY id LIMIT 1', [repositoryId]);
  const interval = options.pollIntervalMs === undefined ? undefined : options.pollIntervalMs === null ? null : `${Math.round(options.pollIntervalMs / 1000)} seconds`;
  let projectId: string;
  if (existing.rows[0]) {
    projectId = String(existing.rows[0].id);
    await deps.pool.query(
      `UPDATE projects SET enabled = true, name = coalesce($2, name), pr_trust = coalesce($3, pr_trust),
              scheduling_shares = coalesce($4, scheduling_shares),
              poll_interval = CASE WHEN $5 THEN $6::interval ELSE poll_interval END,
              settings = CASE WHEN $7::text IS NULL THEN settings ELSE settings || jsonb_build_object('statuses', $7::text) END, updated_at = now()
        WHERE id = $1`,
      [projectId, options.name ?? null, options.prTrust ?? null, options.schedulingShares ?? null, interval !== undefined, interval ?? null, options.statuses ?? null],
    );
  } else {
    const inserted = await deps.pool.query<{ id: string }>(
      `INSERT INTO projects (repository_id, name, pr_trust, scheduling_shares, poll_interval, settings) VALUES ($1, $2, $3, $4, $5::interval, $6) RETURNING id`,
      [
        repositoryId,
        options.name ?? options.repository.replace(/[^A-Za-z0-9._/-]/g, '-'),
        options.prTrust ?? deps.defaults.prTrust,
        options.schedulingShares ?? deps.defaults.schedulingShares,
        interval ?? null,
        options.statuses ? { statuses: options.statuses } : {},
      ],
    ).catch((error: Error & { code?: string }) => {
      if (error.code === '23505') throw new ProjectError(`a project named ${options.name ?? options.repository} exists already: choose another name (--name)`);
      throw error;
    });
    projectId = String(inserted.rows[0]!.id);
  }
  const project = (await findProject(deps.pool, { id: projectId }))!;

  const forge = deps.forges.get(project.forge);
  if (forge.registerHook && deps.forges.gitea) {
    const secret = await deps.forges.gitea.webhookSecret();
    if (!secret) throw new ProjectError('Gitea webhooks need a secret: set forges.gitea.webhook-secret-file');
    const hookId = await forge.registerHook(repoRef(project), webhookUrl(deps.publicUrl, project.forge), secret);
    await deps.pool.query('UPDATE projects SET forge_hook_id = $2 WHERE id = $1', [projectId, hookId]);
    project.hookId = hookId;
  }
  if (project.pollIntervalMs !== null) await startPolling(deps, project.projectName);
  return project;
}

/** The project a local directory runs as: `local/<dir name>-<short hash of its path>`. */
export async function ensureLocalProject(pool: Pool, path: string, attrs: string[] | undefined): Promise<string> {
  const name = `${basename(path).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'root'}-${createHash('sha256').update(path).digest('hex').slice(0, 8)}`;
  const repo = await pool.query<{ id: string }>(
    `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('local', 'local', $1, $2)
     ON CONFLICT (forge, lower(owner), lower(name)) DO UPDATE SET clone_url = excluded.clone_url, updated_at = now()
     RETURNING id`,
    [name, path],
  );
  const projectName = `local/${name}`;
  await pool.query(
    `INSERT INTO projects (repository_id, name, settings) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, updated_at = now()`,
    [repo.rows[0]!.id, projectName, attrs && attrs.length > 0 ? { attrs } : {}],
  );
  return projectName;
}

/**
 * A project of the name given, for a local directory or file evaluated by `harmonia-ci eval`:
 * created on first use, as `run` creates its own, so a machine without a forge needs no setup. An
 * existing project of that name (a forge's too) is left as it is; false then.
 */
export async function createNamedLocalProject(pool: Pool, projectName: string, path: string): Promise<boolean> {
  const repo = await pool.query<{ id: string }>(
    `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('local', 'local', $1, $2)
     ON CONFLICT (forge, lower(owner), lower(name)) DO UPDATE SET updated_at = now()
     RETURNING id`,
    [projectName, path],
  );
  const project = await pool.query(
    `INSERT INTO projects (repository_id, name, settings) VALUES ($1, $2, '{}') ON CONFLICT (name) DO NOTHING`,
    [repo.rows[0]!.id, projectName],
  );
  return project.rowCount === 1;
}

/** Disables a project (by project name or `owner/name`), removing its Gitea webhook and stopping its polling. */
export async function disableProject(deps: ProjectDeps, key: string): Promise<ProjectRepository> {
  const project = (await findProject(deps.pool, { name: key })) ?? (await projectOfRepository(deps.pool, key));
  if (!project) throw new ProjectError(`no project ${key}: \`harmonia-ci projects list\` shows them`);
  await deps.pool.query('UPDATE projects SET enabled = false, forge_hook_id = NULL, updated_at = now() WHERE id = $1', [project.projectId]);
  const forge = deps.forges.get(project.forge);
  if (forge.removeHook) await forge.removeHook(repoRef(project), project.hookId, webhookUrl(deps.publicUrl, project.forge));
  if (deps.client) {
    await deps.client.workflow
      .getHandle(pollWorkflowId(project.projectName))
      .cancel()
      .catch(() => undefined); // Not polling: nothing to stop.
  }
  return { ...project, enabled: false, hookId: null };
}

async function startPolling(deps: ProjectDeps, projectName: string): Promise<void> {
  if (!deps.client) throw new ProjectError('polling needs Temporal: set temporal.address');
  await deps.client.workflow.start<typeof pollWorkflow>('pollWorkflow', {
    workflowId: pollWorkflowId(projectName),
    taskQueue: COORDINATOR_QUEUE,
    args: [{ projectName }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: `poll ${projectName}`,
  });
}

function webhookUrl(publicUrl: string, forge: ForgeKind): string {
  return `${publicUrl.replace(/\/+$/, '')}/webhook/${forge}`;
}

function repoRef(project: ProjectRepository) {
  return { owner: project.owner, name: project.name, installationId: project.installationId };
}

async function findRepository(pool: Pool, repository: string, forge?: ForgeKind): Promise<string | undefined> {
  const [owner, name] = splitRepository(repository);
  const { rows } = await pool.query<{ id: string; forge: string }>(
    `SELECT id, forge FROM repositories WHERE lower(owner) = lower($1) AND lower(name) = lower($2) AND forge <> 'local'
        AND ($3::text IS NULL OR forge = $3)`,
    [owner, name, forge ?? null],
  );
  if (rows.length > 1) throw new ProjectError(`${repository} exists on ${rows.map((r) => r.forge).join(' and ')}: say which with --forge`);
  return rows[0] ? String(rows[0].id) : undefined;
}

async function projectOfRepository(pool: Pool, repository: string): Promise<ProjectRepository | undefined> {
  if (!repository.includes('/')) return undefined;
  const id = await findRepository(pool, repository);
  if (id === undefined) return undefined;
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM projects WHERE repository_id = $1 ORDER BY id LIMIT 1', [id]);
  return rows[0] ? findProject(pool, { id: String(rows[0].id) }) : undefined;
}

function splitRepository(repository: string): [string, string] {
  const parts = repository.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new ProjectError(`expected a repository as owner/name, got "${repository}"`);
  return [parts[0], parts[1]];
}
