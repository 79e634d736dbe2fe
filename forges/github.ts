/**
 * GitHub's REST API for harmonia-ci: as a GitHub App (short-lived installation tokens minted with
 * @octokit/auth-app from the app's private key) or with a personal access token.
 */
import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';
import type { SecretFile } from '../config/secrets.ts';
import { fetchWithDeadline } from '../lib/http.ts';
import { ForgeRequestError } from './errors.ts';
import { forgePaginate, forgeRequest, type ForgeHttp } from './http.ts';
import type { CommitStatus, DiscoveredRepository, ForgeClient, ForgeDeployment, ForgeDeploymentStatus, PullRequestHead, RepositoryRef } from './types.ts';

export interface GitHubOptions {
  apiUrl: string;
  appId?: number;
  privateKeyFile?: SecretFile;
  tokenFile?: SecretFile;
  /** Deadline of each API call and token request (default REQUEST_TIMEOUT_MS, lib/http.ts). */
  timeoutMs?: number;
}

interface GitHubRepository {
  id: number;
  name: string;
  owner: { login: string };
  clone_url: string;
  default_branch?: string;
  private: boolean;
}

const GITHUB_HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };

/** A GitHub client; with an app id it acts as the App, else with the token file. */
export function createGitHubClient(options: GitHubOptions): ForgeClient {
  const apiUrl = options.apiUrl.replace(/\/+$/, '');
  let appAuth: Promise<ReturnType<typeof createAppAuth>> | undefined;
  const app = (): Promise<ReturnType<typeof createAppAuth>> => {
    appAuth ??= (async () =>
      createAppAuth({
        appId: options.appId!,
        privateKey: await options.privateKeyFile!.read(),
        // Token requests go through @octokit/request, whose fetch has no deadline of its own.
        request: request.defaults({ baseUrl: apiUrl, request: { fetch: fetchWithDeadline(options.timeoutMs) } }),
      }))().catch((error: unknown) => {
      appAuth = undefined;
      throw error;
    });
    return appAuth;
  };
  const installations = new Map<string, number>();

  const http = (authorization: () => Promise<string | undefined>): ForgeHttp => ({
    baseUrl: apiUrl,
    authorization,
    headers: GITHUB_HEADERS,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  const asApp = http(async () => `Bearer ${(await callAuth(async () => (await app())({ type: 'app' }))).token}`);
  const installationHttp = (installationId: number): ForgeHttp =>
    http(async () => `token ${(await callAuth(async () => (await app())({ type: 'installation', installationId }))).token}`);

  /** The credentials that act on a repository: its installation's token, or the configured token. */
  const forRepo = async (repo: RepositoryRef): Promise<ForgeHttp> => {
    if (options.appId === undefined) return http(async () => `Bearer ${await options.tokenFile!.read()}`);
    const key = `${repo.owner}/${repo.name}`.toLowerCase();
    let installationId = repo.installationId ?? installations.get(key);
    if (installationId === undefined || installationId === null) {
      const found = await forgeRequest<{ id: number }>(asApp, 'GET', `/repos/${path(repo.owner)}/${path(repo.name)}/installation`);
      installationId = found.data.id;
      installations.set(key, installationId);
    }
    return installationHttp(installationId);
  };
  const repoPath = (repo: RepositoryRef): string => `/repos/${path(repo.owner)}/${path(repo.name)}`;

  return {
    kind: 'github',

    async setStatus(repo: RepositoryRef, sha: string, status: CommitStatus) {
      await forgeRequest(await forRepo(repo), 'POST', `${repoPath(repo)}/statuses/${sha}`, {
        state: status.state,
        target_url: status.targetUrl,
        description: status.description,
        context: status.context,
      });
    },

    async createDeployment(repo: RepositoryRef, deployment: ForgeDeployment) {
      const { data } = await forgeRequest<{ id: number }>(await forRepo(repo), 'POST', `${repoPath(repo)}/deployments`, {
        ref: deployment.sha,
        environment: deployment.environment,
        description: deployment.description,
        // The commit's own statuses are what triggered the deployment; GitHub must not wait on them again.
        required_contexts: [],
        // Merging the default branch into the commit first would deploy something else than what was built.
        auto_merge: false,
      });
      return data.id;
    },

    async setDeploymentStatus(repo: RepositoryRef, deploymentId: number, status: ForgeDeploymentStatus) {
      await forgeRequest(await forRepo(repo), 'POST', `${repoPath(repo)}/deployments/${deploymentId}/statuses`, {
        state: status.state,
        description: status.description,
        log_url: status.logUrl,
        // A success makes the earlier deployments of the environment inactive.
        auto_inactive: true,
      });
    },

    async pullRequest(repo, number): Promise<PullRequestHead> {
      const { data } = await forgeRequest<{
        number: number;
        head: { sha: string; repo: { id: number } | null };
        base: { repo: { id: number } };
        user: { login: string } | null;
      }>(await forRepo(repo), 'GET', `${repoPath(repo)}/pulls/${number}`);
      return { number: data.number, sha: data.head.sha, author: data.user?.login ?? '', sameRepository: data.head.repo?.id === data.base.repo.id };
    },

    async canPush(repo, user) {
      return ['write', 'admin'].includes(await this.permission(repo, user));
    },

    async permission(repo, user) {
      try {
        const { data } = await forgeRequest<{ permission: string }>(
          await forRepo(repo),
          'GET',
          `${repoPath(repo)}/collaborators/${path(user)}/permission`,
        );
        // GitHub folds maintain into write and triage into read in `permission`.
        return data.permission === 'admin' || data.permission === 'write' || data.permission === 'read' ? data.permission : 'none';
      } catch (error) {
        if (error instanceof ForgeRequestError && error.status === 404) return 'none';
        throw error;
      }
    },

    async commitTree(repo, sha) {
      try {
        const { data } = await forgeRequest<{ tree: { sha: string } }>(await forRepo(repo), 'GET', `${repoPath(repo)}/git/commits/${sha}`);
        return data.tree.sha;
      } catch (error) {
        if (error instanceof ForgeRequestError && !error.transient) return undefined;
        throw error;
      }
    },

    async branchHead(repo, branch) {
      const { data } = await forgeRequest<{ commit: { sha: string; commit: { tree: { sha: string } } } }>(
        await forRepo(repo),
        'GET',
        `${repoPath(repo)}/branches/${path(branch)}`,
      );
      return { sha: data.commit.sha, treeHash: data.commit.commit.tree.sha };
    },

    async discover() {
      if (options.appId === undefined) {
        const repos = await forgePaginate(await forRepo({ owner: '', name: '' }), '/user/repos?per_page=100', (d) => d as GitHubRepository[]);
        return repos.map((r) => discovered(r));
      }
      const found: DiscoveredRepository[] = [];
      const list = await forgePaginate(asApp, '/app/installations?per_page=100', (d) => d as Array<{ id: number }>);
      for (const installation of list) {
        const repos = await forgePaginate(installationHttp(installation.id), '/installation/repositories?per_page=100', (d) =>
          (d as { repositories: GitHubRepository[] }).repositories,
        );
        for (const repo of repos) {
          installations.set(`${repo.owner.login}/${repo.name}`.toLowerCase(), installation.id);
          found.push(discovered(repo, installation.id));
        }
      }
      return found;
    },
  };
}

function discovered(repo: GitHubRepository, installationId?: number): DiscoveredRepository {
  return {
    forge: 'github',
    owner: repo.owner.login,
    name: repo.name,
    cloneUrl: repo.clone_url,
    defaultBranch: repo.default_branch ?? 'main',
    forgeId: repo.id,
    ...(installationId === undefined ? {} : { installationId }),
    private: repo.private,
  };
}

/** @octokit/auth-app's failures as ForgeRequestErrors, so callers classify them like any request. */
async function callAuth<T>(mint: () => Promise<T>): Promise<T> {
  try {
    return await mint();
  } catch (error) {
    if (error instanceof ForgeRequestError) throw error;
    const status = (error as { status?: number }).status;
    const transient = status === undefined || status >= 500 || status === 429;
    throw new ForgeRequestError(`GitHub App token: ${(error as Error).message}`, status, transient, undefined, { cause: error });
  }
}

function path(segment: string): string {
  return encodeURIComponent(segment);
}
