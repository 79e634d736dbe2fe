/** Repositories the forges show us and the projects built from them: what `projects list` and `GET /api/projects` show. */
import type { Pool } from 'pg';
import type { PrTrust } from '../forges/store.ts';
import type { ForgeKind } from '../forges/types.ts';

/** A repository a forge shows us, with the project that builds it, if any. */
export interface RepositoryListing {
  repository: string;
  forge: ForgeKind;
  project: string | null;
  enabled: boolean;
  prTrust: PrTrust | null;
  schedulingShares: number | null;
  pollIntervalSeconds: number | null;
  cloneUrl: string;
  defaultBranch: string;
}

/** Every known repository with its project, if any. */
export async function listRepositories(pool: Pool): Promise<RepositoryListing[]> {
  const { rows } = await pool.query<{
    forge: ForgeKind; owner: string; name: string; clone_url: string; default_branch: string;
    project: string | null; enabled: boolean | null; pr_trust: PrTrust | null; scheduling_shares: number | null; poll_s: string | null;
  }>(
    `SELECT r.forge, r.owner, r.name, r.clone_url, r.default_branch, p.name AS project, p.enabled, p.pr_trust, p.scheduling_shares,
            extract(epoch FROM p.poll_interval)::bigint AS poll_s
       FROM repositories r LEFT JOIN projects p ON p.repository_id = r.id
      WHERE r.forge <> 'local' ORDER BY r.forge, lower(r.owner), lower(r.name)`,
  );
  return rows.map((r) => ({
    repository: `${r.owner}/${r.name}`,
    forge: r.forge,
    project: r.project,
    enabled: r.enabled ?? false,
    prTrust: r.pr_trust,
    schedulingShares: r.scheduling_shares,
    pollIntervalSeconds: r.poll_s === null ? null : Number(r.poll_s),
    cloneUrl: r.clone_url,
    defaultBranch: r.default_branch,
  }));
}
