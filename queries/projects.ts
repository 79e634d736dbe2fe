/** A project as its dashboard page shows it: the repository, and each ref with its latest eval. */
import type { Pool } from 'pg';
import { readEvalOverviews, type EvalOverview } from './eval-overviews.ts';

export interface ProjectRef {
  ref: string;
  evalCount: number;
  latest: EvalOverview;
}

export interface ProjectPage {
  name: string;
  enabled: boolean;
  forge: string;
  repository: string;
  cloneUrl: string;
  defaultBranch: string;
  createdAt: string;
  /** Settings an admin may change on the project page. */
  prTrust: string;
  schedulingShares: number;
  pollIntervalSeconds: number | null;
  refs: ProjectRef[];
}

/** Refs shown on a project page, most recently active first (the default branch leads). */
const REFS_SHOWN = 100;

/** The project named `name` with its refs; undefined when there is no such project. */
export async function readProjectPage(pool: Pool, name: string): Promise<ProjectPage | undefined> {
  const { rows } = await pool.query<{
    id: string;
    name: string;
    enabled: boolean;
    forge: string;
    owner: string;
    repo: string;
    clone_url: string;
    default_branch: string;
    created_at: Date;
    pr_trust: string;
    scheduling_shares: number;
    poll_s: number | null;
  }>(
    `SELECT p.id, p.name, p.enabled, r.forge, r.owner, r.name AS repo, r.clone_url, r.default_branch, p.created_at,
            p.pr_trust, p.scheduling_shares, extract(epoch FROM p.poll_interval)::int AS poll_s
       FROM projects p JOIN repositories r ON r.id = p.repository_id WHERE p.name = $1`,
    [name],
  );
  const project = rows[0];
  if (!project) return undefined;
  const defaultRef = `refs/heads/${project.default_branch}`;
  const refs = await pool.query<{ ref: string; latest: string; evals: number }>(
    `SELECT s.ref, s.latest, s.evals FROM (
       SELECT DISTINCT ON (ev.ref) ev.ref, ev.id AS latest, ev.created_at, count(*) OVER (PARTITION BY ev.ref)::int AS evals
         FROM evaluations ev WHERE ev.project_id = $1
        ORDER BY ev.ref, ev.created_at DESC, ev.id DESC) s
      ORDER BY (s.ref = $2) DESC, s.created_at DESC, s.latest DESC
      LIMIT ${REFS_SHOWN}`,
    [project.id, defaultRef],
  );
  const latest = await readEvalOverviews(pool, refs.rows.map((r) => String(r.latest)));
  const byId = new Map(latest.map((ev) => [ev.id, ev]));
  const projectRefs = refs.rows.flatMap((r) => {
    const ev = byId.get(String(r.latest));
    return ev ? [{ ref: r.ref, evalCount: r.evals, latest: ev }] : [];
  });
  return {
    name: project.name,
    enabled: project.enabled,
    forge: project.forge,
    repository: `${project.owner}/${project.repo}`,
    cloneUrl: project.clone_url,
    defaultBranch: project.default_branch,
    createdAt: project.created_at.toISOString(),
    prTrust: project.pr_trust,
    schedulingShares: project.scheduling_shares,
    pollIntervalSeconds: project.poll_s,
    refs: projectRefs,
  };
}

export interface ProjectSummary {
  name: string;
  forge: string;
  repository: string;
  enabled: boolean;
  evalCount: number;
  latest: EvalOverview | null;
}

/** Every project with its newest eval, most recently active first. */
export async function listProjects(pool: Pool): Promise<ProjectSummary[]> {
  const { rows } = await pool.query<{ name: string; forge: string; owner: string; repo: string; enabled: boolean; evals: number; latest: string | null }>(
    `SELECT p.name, r.forge, r.owner, r.name AS repo, p.enabled,
            (SELECT count(*)::int FROM evaluations ev WHERE ev.project_id = p.id) AS evals,
            (SELECT ev.id FROM evaluations ev WHERE ev.project_id = p.id ORDER BY ev.created_at DESC, ev.id DESC LIMIT 1) AS latest
       FROM projects p JOIN repositories r ON r.id = p.repository_id`,
  );
  const latest = await readEvalOverviews(pool, rows.flatMap((r) => (r.latest === null ? [] : [String(r.latest)])));
  const byId = new Map(latest.map((ev) => [ev.id, ev]));
  return rows
    .map((r) => ({
      name: r.name,
      forge: r.forge,
      repository: `${r.owner}/${r.repo}`,
      enabled: r.enabled,
      evalCount: r.evals,
      latest: r.latest === null ? null : (byId.get(String(r.latest)) ?? null),
    }))
    .sort((a, b) => (b.latest?.createdAt ?? '').localeCompare(a.latest?.createdAt ?? '') || a.name.localeCompare(b.name));
}
