/** A project as its dashboard page shows it: the repository, and each ref with its latest eval. */
import type { Pool } from 'pg';
import { readEvalOverviews, type EvalOverview } from './evals.ts';

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
  }>(
    `SELECT p.id, p.name, p.enabled, r.forge, r.owner, r.name AS repo, r.clone_url, r.default_branch, p.created_at
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
    refs: projectRefs,
  };
}
