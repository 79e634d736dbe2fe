/** The poll workflow's activity: read the default branch's head and signal it like a webhook push. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { Logger } from '../lib/log.ts';
import { signalPush } from '../temporal/push.ts';
import { forgePushEvent } from './git-source.ts';
import { asActivityFailure } from './retry.ts';
import { findProject } from './store.ts';
import type { Forges } from './types.ts';

export interface PollDeps {
  pool: Pool;
  client: Client;
  forges?: Forges;
  log?: Logger;
}

/** Polls a project once; returns the interval until the next poll, or null when polling should stop. */
export function createForgePoller(deps: PollDeps): (projectName: string) => Promise<{ intervalMs: number | null }> {
  return async (projectName) => {
    const project = await findProject(deps.pool, { name: projectName });
    if (!project?.enabled || project.pollIntervalMs === null) return { intervalMs: null };
    if (!deps.forges) {
      deps.log?.warn({ project: projectName }, 'cannot poll: no forge is configured on this coordinator');
      return { intervalMs: project.pollIntervalMs };
    }
    try {
      const forge = deps.forges.get(project.forge);
      const repo = { owner: project.owner, name: project.name, installationId: project.installationId };
      const head = await forge.branchHead(repo, project.defaultBranch);
      const ref = `refs/heads/${project.defaultBranch}`;
      await signalPush(
        deps.client,
        projectName,
        ref,
        forgePushEvent({ cloneUrl: project.cloneUrl, ref, sha: head.sha, ...(head.treeHash ? { treeHash: head.treeHash } : {}), event: 'poll' }),
      );
    } catch (error) {
      const failure = asActivityFailure(error);
      if (failure) throw failure;
      // A permanent problem (branch gone, no access): say so and try again next interval.
      deps.log?.warn({ err: error, project: projectName }, 'polling the default branch failed');
    }
    return { intervalMs: project.pollIntervalMs };
  };
}
