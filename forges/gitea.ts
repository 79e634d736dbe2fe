/**
 * Gitea's API (`/api/v1`) for harmonia-ci, with an access token. Gitea has no app-level webhooks,
 * so enabling a project registers a repository webhook and disabling it removes that hook.
 */
import type { SecretFile } from '../config/secrets.ts';
import { ForgeRequestError } from './errors.ts';
import { forgePaginate, forgeRequest, type ForgeHttp } from './http.ts';
import type { CommitStatus, DiscoveredRepository, ForgeClient, PullRequestHead, RepositoryRef } from './types.ts';

export interface GiteaOptions {
  /** The Gitea server's root URL, e.g. `https://git.example.org`. */
  url: string;
  tokenFile: SecretFile;
  webhookSecretFile?: SecretFile;
  /** Deadline of each API call (default REQUEST_TIMEOUT_MS, lib/http.ts). */
  timeoutMs?: number;
}

interface GiteaRepository {
  id: number;
  name: string;
  owner: { login: string };
  clone_url: string;
  default_branch?: string;
  private: boolean;
}

/** The events a registered webhook sends. */
export const GITEA_HOOK_EVENTS = ['push', 'pull_request', 'issue_comment'];
const PAGE = 50;

export function createGiteaClient(options: GiteaOptions): ForgeClient & { webhookSecret(): Promise<string | undefined> } {
  const http: ForgeHttp = {
    baseUrl: `${options.url.replace(/\/+$/, '')}/api/v1`,
    authorization: async () => `token ${await options.tokenFile.read()}`,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  const repoPath = (repo: RepositoryRef): string => `/repos/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}`;

  return {
    kind: 'gitea',

    webhookSecret: async () => options.webhookSecretFile?.read(),

    async setStatus(repo: RepositoryRef, sha: string, status: CommitStatus) {
      await forgeRequest(http, 'POST', `${repoPath(repo)}/statuses/${sha}`, {
        state: status.state,
        target_url: status.targetUrl,
        description: status.description,
        context: status.context,
      });
    },

    async pullRequest(repo, number): Promise<PullRequestHead> {
      const { data } = await forgeRequest<{
        number: number;
        head: { sha: string; repo_id: number };
        base: { repo_id: number };
        user: { login: string } | null;
      }>(http, 'GET', `${repoPath(repo)}/pulls/${number}`);
      return { number: data.number, sha: data.head.sha, author: data.user?.login ?? '', sameRepository: data.head.repo_id === data.base.repo_id };
    },

    async canPush(repo, user) {
      return ['write', 'admin'].includes(await this.permission(repo, user));
    },

    async permission(repo, user) {
      try {
        const { data } = await forgeRequest<{ permission: string }>(
          http,
          'GET',
          `${repoPath(repo)}/collaborators/${encodeURIComponent(user)}/permission`,
        );
        if (data.permission === 'owner' || data.permission === 'admin') return 'admin';
        return data.permission === 'write' || data.permission === 'read' ? data.permission : 'none';
      } catch (error) {
        if (error instanceof ForgeRequestError && (error.status === 404 || error.status === 403)) return 'none';
        throw error;
      }
    },

    async commitTree(repo, sha) {
      try {
        const { data } = await forgeRequest<{ commit: { tree: { sha: string } } }>(http, 'GET', `${repoPath(repo)}/git/commits/${sha}`);
        return data.commit.tree.sha;
      } catch (error) {
        if (error instanceof ForgeRequestError && !error.transient) return undefined;
        throw error;
      }
    },

    async branchHead(repo, branch) {
      const { data } = await forgeRequest<{ commit: { id: string } }>(http, 'GET', `${repoPath(repo)}/branches/${encodeURIComponent(branch)}`);
      const treeHash = await this.commitTree(repo, data.commit.id);
      return treeHash === undefined ? { sha: data.commit.id } : { sha: data.commit.id, treeHash };
    },

    async discover() {
      const repos = await forgePaginate(http, `/user/repos?limit=${PAGE}`, (d) => d as GiteaRepository[]);
      const orgs = await forgePaginate(http, `/user/orgs?limit=${PAGE}`, (d) => d as Array<{ username: string }>);
      for (const org of orgs) {
        repos.push(...(await forgePaginate(http, `/orgs/${encodeURIComponent(org.username)}/repos?limit=${PAGE}`, (d) => d as GiteaRepository[])));
      }
      const byId = new Map(repos.map((r) => [r.id, r]));
      return [...byId.values()].map(
        (r): DiscoveredRepository => ({
          forge: 'gitea',
          owner: r.owner.login,
          name: r.name,
          cloneUrl: r.clone_url,
          defaultBranch: r.default_branch ?? 'main',
          forgeId: r.id,
          private: r.private,
        }),
      );
    },

    async registerHook(repo, url, secret) {
      const existing = await forgePaginate(http, `${repoPath(repo)}/hooks?limit=${PAGE}`, (d) => d as Array<{ id: number; config: { url?: string } }>);
      const ours = existing.find((hook) => hook.config.url === url);
      const body = { config: { url, content_type: 'json', secret }, events: GITEA_HOOK_EVENTS, active: true };
      if (ours) {
        await forgeRequest(http, 'PATCH', `${repoPath(repo)}/hooks/${ours.id}`, body);
        return ours.id;
      }
      const { data } = await forgeRequest<{ id: number }>(http, 'POST', `${repoPath(repo)}/hooks`, { type: 'gitea', ...body });
      return data.id;
    },

    async removeHook(repo, hookId, url) {
      let ids = hookId === null ? [] : [hookId];
      if (ids.length === 0) {
        const existing = await forgePaginate(http, `${repoPath(repo)}/hooks?limit=${PAGE}`, (d) => d as Array<{ id: number; config: { url?: string } }>);
        ids = existing.filter((hook) => hook.config.url === url).map((hook) => hook.id);
      }
      for (const id of ids) {
        try {
          await forgeRequest(http, 'DELETE', `${repoPath(repo)}/hooks/${id}`);
        } catch (error) {
          // Someone removed it by hand already: the goal is reached.
          if (!(error instanceof ForgeRequestError && error.status === 404)) throw error;
        }
      }
    },
  };
}
