/**
 * A local HTTP server standing in for GitHub's or Gitea's API. It answers from local git
 * repositories (branch heads, trees and PR refs are read with git), captures every request and
 * checks it against the official description (GitHub's OpenAPI, Gitea's API), checks the
 * credentials (GitHub App JWTs are verified with the app's public key), and can be told to fail
 * for a while (500, rate limits) to show that statuses survive a forge outage.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { giteaApiViolations } from './gitea-api.ts';
import { createOAuthServer, type OAuthApp } from './oauth.ts';
import { githubOpenApiViolations, type CapturedRequest } from './openapi.ts';

export interface FakeRepo {
  owner: string;
  name: string;
  id: number;
  /** The local git repository serving as the remote; its file:// URL is the clone URL. */
  dir: string;
  defaultBranch: string;
  private?: boolean;
}

export interface Captured extends CapturedRequest {
  authorization: string | undefined;
  status: number;
}

export interface Fault {
  /** Which requests fail, e.g. `POST /repos/o/r/statuses/`. */
  prefix: string;
  status: number;
  headers?: Record<string, string>;
  message: string;
  times: number;
}

export interface FakeForge {
  /** API root as configured: GitHub's api-url, or Gitea's server URL. */
  url: string;
  requests: Captured[];
  violations: string[];
  statuses: Array<{ sha: string; state: string; context: string; description: string; target_url: string }>;
  /** GitHub deployments created, each with the statuses sent for it in order. */
  deployments: Array<{ id: number; repo: string; ref: string; environment: string; statuses: Array<{ state: string; description: string; log_url: string }> }>;
  hooks: Array<{ id: number; repo: string; config: Record<string, string>; events: string[]; active: boolean }>;
  collaborators: Set<string>;
  /** Permissions by user, as the collaborator permission endpoint reports them; ahead of `collaborators`. */
  permissions: Map<string, string>;
  /** Who the OAuth authorize page logs in (the person at the browser), and OAuth requests that broke RFC 6749. */
  oauthUser: string | undefined;
  /** PR number → author and whether its head is a branch of the same repository. */
  pulls: Map<number, { author: string; sameRepository: boolean }>;
  faults: Fault[];
  addRepo(repo: FakeRepo): void;
  close(): Promise<void>;
}

export interface FakeForgeOptions {
  kind: 'github' | 'gitea';
  /** The token harmonia-ci must present (Gitea, or GitHub without an app). */
  token?: string;
  /** A GitHub App: JWTs must verify with `publicKey`, installation tokens are minted per request. */
  app?: { id: number; publicKey: KeyObject; installationId: number };
  /** An OAuth application people log in with (authorize, access_token, `GET /user`). */
  oauth?: OAuthApp;
}

export async function startFakeForge(options: FakeForgeOptions): Promise<FakeForge> {
  const repos = new Map<string, FakeRepo>();
  const installationTokens = new Set<string>();
  let nextHook = 1;
  const forge: Omit<FakeForge, 'url' | 'close' | 'addRepo'> = {
    requests: [],
    violations: [],
    statuses: [],
    deployments: [],
    hooks: [],
    collaborators: new Set(),
    permissions: new Map(),
    oauthUser: undefined,
    pulls: new Map(),
    faults: [],
  };
  const prefix = options.kind === 'gitea' ? '/api/v1' : '';

  const git = (repo: FakeRepo, ...args: string[]): string | undefined => {
    try {
      return execFileSync('git', ['-C', repo.dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const repoJson = (repo: FakeRepo) => ({
    id: repo.id,
    name: repo.name,
    full_name: `${repo.owner}/${repo.name}`,
    owner: { login: repo.owner, username: repo.owner },
    clone_url: `file://${repo.dir}`,
    default_branch: repo.defaultBranch,
    private: repo.private ?? false,
  });

  // The test sets `oauthUser` on the object returned below, which copies `forge`'s fields.
  const returned: { forge?: FakeForge } = {};
  const oauth = options.oauth ? createOAuthServer(options.oauth, () => returned.forge?.oauthUser, forge.violations) : undefined;

  const authorized = (path: string, authorization: string | undefined): boolean => {
    if (path === '/user' && oauth) return oauth.userOf(authorization) !== undefined;
    if (options.app && path.startsWith('/app/')) return verifyJwt(authorization, options.app.id, options.app.publicKey);
    if (options.app) return authorization !== undefined && installationTokens.has(authorization.replace(/^(token|bearer) /i, ''));
    return authorization === `token ${options.token}` || authorization === `Bearer ${options.token}`;
  };

  const answer = (method: string, path: string, body: unknown, captured: Captured): [number, unknown] => {
    const route = (pattern: string): string[] | undefined => {
      const m = new RegExp(`^${pattern}$`).exec(`${method} ${path}`);
      return m ? m.slice(1).map(decodeURIComponent) : undefined;
    };
    let m: string[] | undefined;
    if ((m = route('POST /app/installations/(\\d+)/access_tokens'))) {
      const token = `ghs_${randomBytes(12).toString('hex')}`;
      installationTokens.add(token);
      return [201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {}, repository_selection: 'all' }];
    }
    if (route('GET /app/installations')) return [200, [{ id: options.app?.installationId ?? 1, account: { login: 'installer' } }]];
    if (route('GET /installation/repositories') || route('GET /user/repos')) {
      const list = [...repos.values()].map(repoJson);
      return [200, options.kind === 'github' && path.startsWith('/installation') ? { total_count: list.length, repositories: list } : list];
    }
    if (route('GET /user/orgs')) return [200, []];
    if (route('GET /user') && oauth) {
      const login = oauth.userOf(captured.authorization)!;
      return [200, { id: login.length, login, ...(options.kind === 'gitea' ? { username: login } : { type: 'User' }) }];
    }
    if (!(m = route('[A-Z]+ /repos/([^/]+)/([^/]+)(/.*)?'))) return [404, { message: 'Not Found' }];
    const repo = repos.get(`${m[0]}/${m[1]}`.toLowerCase());
    if (!repo) return [404, { message: 'Not Found' }];
    const rest = `${method} ${m[2] ?? ''}`;
    const sub = (pattern: string): string[] | undefined => {
      const s = new RegExp(`^${pattern}$`).exec(rest);
      return s ? s.slice(1).map(decodeURIComponent) : undefined;
    };
    if (sub('GET /installation')) return [200, { id: options.app?.installationId }];
    if ((m = sub('POST /statuses/([0-9a-f]{40})'))) {
      const status = body as { state: string; context: string; description: string; target_url: string };
      forge.statuses.push({ sha: m[0]!, ...status });
      return [201, { id: forge.statuses.length, ...status }];
    }
    if (options.kind === 'github' && sub('POST /deployments')) {
      const { ref, environment } = body as { ref: string; environment: string };
      if (!git(repo, 'rev-parse', '--verify', `${ref}^{commit}`)) return [422, { message: `No ref found for: ${ref}` }];
      const deployment = { id: 9000 + forge.deployments.length, repo: `${repo.owner}/${repo.name}`, ref, environment, statuses: [] };
      forge.deployments.push(deployment);
      return [201, { id: deployment.id, sha: ref, ref, environment, task: 'deploy' }];
    }
    if (options.kind === 'github' && (m = sub('POST /deployments/(\\d+)/statuses'))) {
      const deployment = forge.deployments.find((d) => d.id === Number(m![0]) && d.repo === `${repo.owner}/${repo.name}`);
      if (!deployment) return [404, { message: 'Not Found' }];
      const status = body as { state: string; description: string; log_url: string };
      deployment.statuses.push({ state: status.state, description: status.description, log_url: status.log_url });
      return [201, { id: deployment.statuses.length, state: status.state }];
    }
    if ((m = sub('GET /pulls/(\\d+)'))) {
      const pr = forge.pulls.get(Number(m[0]));
      const sha = git(repo, 'rev-parse', `refs/pull/${m[0]}/head`);
      if (!pr || !sha) return [404, { message: 'Not Found' }];
      const headRepo = pr.sameRepository ? repo.id : repo.id + 1000;
      return [200, { number: Number(m[0]), user: { login: pr.author }, head: { sha, repo: { id: headRepo }, repo_id: headRepo }, base: { repo: { id: repo.id }, repo_id: repo.id } }];
    }
    if ((m = sub('GET /collaborators/([^/]+)/permission'))) {
      const permission = forge.permissions.get(m[0]!) ?? (forge.collaborators.has(m[0]!) ? 'write' : repo.private ? 'none' : 'read');
      return [200, { permission, role_name: permission, user: { login: m[0] } }];
    }
    if ((m = sub('GET /git/commits/([0-9a-f]{40})'))) {
      const tree = git(repo, 'rev-parse', `${m[0]}^{tree}`);
      if (!tree) return [404, { message: 'Not Found' }];
      return [200, options.kind === 'github' ? { sha: m[0], tree: { sha: tree } } : { sha: m[0], commit: { tree: { sha: tree } } }];
    }
    if ((m = sub('GET /branches/(.+)'))) {
      const sha = git(repo, 'rev-parse', `refs/heads/${m[0]}`);
      if (!sha) return [404, { message: 'Branch Not Found' }];
      const tree = git(repo, 'rev-parse', `${sha}^{tree}`);
      return [200, options.kind === 'github' ? { name: m[0], commit: { sha, commit: { tree: { sha: tree } } } } : { name: m[0], commit: { id: sha } }];
    }
    const key = `${repo.owner}/${repo.name}`;
    if (sub('GET /hooks')) return [200, forge.hooks.filter((h) => h.repo === key)];
    if (sub('POST /hooks')) {
      const hook = { id: nextHook++, repo: key, ...(body as { config: Record<string, string>; events: string[]; active: boolean }) };
      forge.hooks.push(hook);
      return [201, hook];
    }
    if ((m = sub('(PATCH|DELETE) /hooks/(\\d+)'))) {
      const index = forge.hooks.findIndex((h) => h.repo === key && h.id === Number(m![1]));
      if (index < 0) return [404, { message: 'Not Found' }];
      if (m[0] === 'DELETE') {
        forge.hooks.splice(index, 1);
        return [204, undefined];
      }
      Object.assign(forge.hooks[index]!, body);
      return [200, forge.hooks[index]];
    }
    return [404, { message: 'Not Found' }];
  };

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const text = Buffer.concat(chunks).toString('utf8');
      // The browser-facing OAuth pages are not API operations: RFC 6749 rules them.
      if (oauth && url.pathname.startsWith('/login/oauth/')) return oauth.handle(request, url, text, response);
      const body = text === '' ? undefined : (JSON.parse(text) as unknown);
      const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
      const method = request.method ?? 'GET';
      const captured: Captured = { method, path, query: url.searchParams, body, authorization: request.headers.authorization, status: 0 };
      forge.requests.push(captured);
      if (!url.pathname.startsWith(prefix)) forge.violations.push(`${method} ${url.pathname}: outside ${prefix}`);
      forge.violations.push(...(options.kind === 'github' ? githubOpenApiViolations(captured) : giteaApiViolations(captured)));
      const send = (status: number, data: unknown, headers: Record<string, string> = {}): void => {
        captured.status = status;
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(data === undefined ? '' : JSON.stringify(data));
      };
      if (!authorized(path, captured.authorization)) return send(401, { message: 'Bad credentials' });
      const fault = forge.faults.find((f) => f.times > 0 && `${method} ${path}`.startsWith(f.prefix));
      if (fault) {
        fault.times--;
        return send(fault.status, { message: fault.message }, fault.headers);
      }
      const [status, data] = answer(method, path, body, captured);
      send(status, data);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const self: FakeForge = {
    ...forge,
    url: `http://127.0.0.1:${port}`,
    addRepo: (repo) => void repos.set(`${repo.owner}/${repo.name}`.toLowerCase(), repo),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  returned.forge = self;
  return self;
}

/** An RS256 JWT from the app: signed with its private key, issued by its id, not expired. */
function verifyJwt(authorization: string | undefined, appId: number, publicKey: KeyObject): boolean {
  const token = authorization?.replace(/^bearer /i, '') ?? '';
  const [header, payload, signature] = token.split('.');
  if (!header || !payload || !signature) return false;
  const ok = verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, 'base64url'));
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: unknown; exp?: number };
  return ok && String(claims.iss) === String(appId) && (claims.exp ?? 0) * 1000 > Date.now();
}
