/**
 * `app.access`: who is asking (`request.principal`, from an API token or the login session),
 * what they may do on each project, and which projects they may see. Rights come from the forge's
 * collaborator permission and are cached for `auth.permission-ttl`; a login refreshes them.
 * Every read route asks `visibility()` so a private project never reaches someone who may not
 * read it, whether as a page, JSON, an event stream or a log.
 */
import type { FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import type { ServerConfig } from '../../config/types.ts';
import type { ForgeKind, Forges, RepoPermission } from '../../forges/types.ts';
import { ForbiddenError, NotFoundError, UnauthorizedError } from '../errors.ts';
import { sharedPlugin } from '../plugins/shared.ts';
import { includes, lesser, type Right } from '../../access/rights.ts';
import { verifyToken } from '../../access/tokens.ts';
import { principalName, type Principal } from './principal.ts';
import { DEFAULT_STORE_DIR } from '../../daemon/core/store-path.ts';

declare module 'fastify' {
  interface FastifyInstance {
    access: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** A repository as access decisions see it; `project` is its project's name when enabled once. */
export interface RepositoryAccess {
  forge: ForgeKind;
  owner: string;
  name: string;
  private: boolean;
  project: string | null;
}

/** What one request may see. */
export interface Visibility {
  /** Private projects the request may not read: list queries leave them out. */
  hidden: string[];
  project(name: string): boolean;
  repository(repo: Pick<RepositoryAccess, 'forge' | 'owner' | 'name'>): boolean;
}

export interface Access {
  visibility(request: FastifyRequest): Promise<Visibility>;
  /** The principal's permission on a repository. */
  permission(principal: Principal | null, repo: RepositoryAccess): Promise<RepoPermission>;
  /** The request's permission on a project ('none' for an unknown one). */
  permissionOnProject(request: FastifyRequest, project: string): Promise<RepoPermission>;
  /** Throws unless the request holds `right` on the project (404 when it may not even see it). */
  requireOnProject(request: FastifyRequest, project: string, right: Right): Promise<Principal>;
  /** The same for a repository `owner/name` (on `forge` when given), enabled as a project or not. */
  requireOnRepository(request: FastifyRequest, repository: { owner: string; name: string; forge?: ForgeKind | undefined }, right: Right): Promise<Principal>;
  /** Throws unless the request comes from an operator (with a token of admin scope, if a token). */
  requireOperator(request: FastifyRequest): Principal;
  /** Whether a derivation's build may be seen: it belongs to a visible project, or to none. */
  derivationVisible(request: FastifyRequest, drvPath: string): Promise<boolean>;
  /**
   * Whether a store path (by hash part) may be downloaded from the cache: a `.drv`, or an output of
   * derivations, that some visible project (or no project) has; a path the database does not know is.
   */
  storePathVisible(request: FastifyRequest, hashPart: string): Promise<boolean>;
  /** Forgets the cached permissions of a person (at login). */
  forget(forge: ForgeKind, login: string): void;
}

export interface AccessPluginOptions {
  config: ServerConfig;
  forges: Forges;
}

async function repositories(pool: Pool): Promise<RepositoryAccess[]> {
  const { rows } = await pool.query<RepositoryAccess>(
    `SELECT r.forge, r.owner, r.name, r.private, p.name AS project
       FROM repositories r LEFT JOIN projects p ON p.repository_id = r.id`,
  );
  return rows;
}

const repoKey = (repo: Pick<RepositoryAccess, 'forge' | 'owner' | 'name'>): string => `${repo.forge}:${repo.owner}/${repo.name}`.toLowerCase();

/** Registers `app.access` and resolves `request.principal` on every request. */
export const accessPlugin = sharedPlugin<AccessPluginOptions>('access', async (app, { config, forges }) => {
  const operators = new Set(config.auth.admins.map((name) => name.toLowerCase()));
  const cache = new Map<string, { permission: RepoPermission; until: number }>();

  const forgePermission = async (principal: Principal, repo: RepositoryAccess): Promise<RepoPermission> => {
    const key = `${principalName(principal)}|${repoKey(repo)}`.toLowerCase();
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.permission;
    const permission = await forges.get(repo.forge).permission({ owner: repo.owner, name: repo.name }, principal.login);
    cache.set(key, { permission, until: Date.now() + config.auth.permissionTtl });
    return permission;
  };

  const permission = async (principal: Principal | null, repo: RepositoryAccess): Promise<RepoPermission> => {
    const everyone: RepoPermission = repo.private ? 'none' : 'read';
    if (!principal) return everyone;
    const scope = principal.scope ?? 'admin';
    if (principal.operator) return scope;
    if (principal.forge !== repo.forge) return lesser(everyone, scope);
    const held = await forgePermission(principal, repo);
    return lesser(includes(held, everyone) ? held : everyone, scope);
  };

  const visibility = async (request: FastifyRequest): Promise<Visibility> => {
    const all = await repositories(app.db);
    const readable = new Set<string>();
    await Promise.all(
      all.map(async (repo) => {
        if (!repo.private || includes(await permission(request.principal, repo), 'read')) readable.add(repoKey(repo));
      }),
    );
    const hidden = all.filter((r) => r.project !== null && !readable.has(repoKey(r))).map((r) => r.project!);
    const hiddenSet = new Set(hidden);
    return {
      hidden,
      project: (name) => !hiddenSet.has(name) && all.some((r) => r.project === name),
      repository: (repo) => readable.has(repoKey(repo)),
    };
  };

  const requireOn = async (request: FastifyRequest, match: (repo: RepositoryAccess) => boolean, label: string, right: Right): Promise<Principal> => {
    const repo = (await repositories(app.db)).find(match);
    const held = repo ? await permission(request.principal, repo) : 'none';
    if (!includes(held, 'read')) throw new NotFoundError(`no project or repository ${label}`);
    if (!request.principal) throw new UnauthorizedError(`log in (or send an API token as Authorization: Bearer) to act on ${label}`);
    if (!includes(held, right)) {
      const capped = request.principal.scope !== null && !includes(request.principal.scope, right);
      const scope = capped ? ` through a token of scope ${request.principal.scope}` : '';
      throw new ForbiddenError(`${principalName(request.principal)} holds ${held} on ${label}${scope}; this needs ${right}`);
    }
    return request.principal;
  };

  /** Whether any of the derivations belongs to a project the request may see, or to none at all. */
  const derivationsVisible = async (request: FastifyRequest, drvPaths: string[]): Promise<boolean> => {
    const { rows } = await app.db.query<{ drv_path: string; name: string }>(
      `SELECT b.drv_path, p.name FROM build_jobs b
         JOIN evaluation_builds eb ON eb.build_id = b.id JOIN evaluations ev ON ev.id = eb.eval_id JOIN projects p ON p.id = ev.project_id
        WHERE b.drv_path = ANY($1)
       UNION
       SELECT a.drv_path, p.name FROM eval_attrs a JOIN evaluations ev ON ev.id = a.eval_id JOIN projects p ON p.id = ev.project_id
        WHERE a.drv_path = ANY($1)`,
      [drvPaths],
    );
    if (drvPaths.some((drv) => !rows.some((r) => r.drv_path === drv))) return true;
    const seen = await visibility(request);
    return rows.some((r) => seen.project(r.name));
  };

  const access: Access = {
    visibility,
    permission,
    async permissionOnProject(request, project) {
      const repo = (await repositories(app.db)).find((r) => r.project === project);
      return repo ? permission(request.principal, repo) : 'none';
    },
    async requireOnProject(request, project, right) {
      return requireOn(request, (r) => r.project === project, project, right);
    },
    async requireOnRepository(request, { owner, name, forge }, right) {
      const wanted = `${owner}/${name}`.toLowerCase();
      return requireOn(request, (r) => `${r.owner}/${r.name}`.toLowerCase() === wanted && (!forge || r.forge === forge), `${owner}/${name}`, right);
    },
    requireOperator(request) {
      const principal = request.principal;
      if (!principal) throw new UnauthorizedError('log in as an operator (auth.admins), or send an operator\'s API token as Authorization: Bearer');
      if (!principal.operator) throw new ForbiddenError(`${principalName(principal)} is not an operator; operators are named in auth.admins`);
      if (principal.scope && principal.scope !== 'admin') throw new ForbiddenError(`this token has scope ${principal.scope}; operator actions need a token of scope admin`);
      return principal;
    },
    derivationVisible: (request, drvPath) => derivationsVisible(request, [drvPath]),
    async storePathVisible(request, hashPart) {
      // A range on the store path's prefix uses the primary key and the out_path index.
      const [low, high] = [`${DEFAULT_STORE_DIR}/${hashPart}-`, `${DEFAULT_STORE_DIR}/${hashPart}.`];
      const { rows } = await app.db.query<{ drv_path: string }>(
        `SELECT drv_path FROM derivations WHERE drv_path >= $1 AND drv_path < $2
         UNION SELECT drv_path FROM derivation_outputs WHERE out_path >= $1 AND out_path < $2`,
        [low, high],
      );
      return rows.length === 0 || derivationsVisible(request, rows.map((r) => r.drv_path));
    },
    forget(forge, login) {
      const prefix = `${forge}:${login}|`.toLowerCase();
      for (const key of cache.keys()) if (key.startsWith(prefix)) cache.delete(key);
    },
  };
  app.decorate('access', access);
  app.decorateRequest('principal', null);

  app.addHook('onRequest', async (request) => {
    const authorization = request.headers.authorization;
    // Only our own routes: Nix clients send netrc credentials to the cache, Gitea may sign webhooks.
    const ours = request.url.startsWith('/api/') || request.url.startsWith('/ci/');
    if (authorization !== undefined && ours) {
      const [kind, token] = authorization.split(' ', 2);
      if (kind?.toLowerCase() !== 'bearer' || !token) throw new UnauthorizedError('Authorization: expected "Bearer <token>" with a token from `harmonia-ci tokens create`');
      const record = await verifyToken(app.db, token);
      if (!record) throw new UnauthorizedError('the API token is unknown, revoked or expired; ask an operator for a new one (`harmonia-ci tokens create`)');
      request.principal = { forge: record.forge, login: record.login, operator: operators.has(principalName(record).toLowerCase()), via: `token:${record.id}`, scope: record.scope };
      return;
    }
    if (authorization !== undefined) {
      // The cache: Nix sends a netrc's credentials as Basic; an API token as the password (or as Bearer) reads private paths.
      const token = cacheToken(authorization);
      const record = token === undefined ? undefined : await verifyToken(app.db, token);
      if (record) request.principal = { forge: record.forge, login: record.login, operator: operators.has(principalName(record).toLowerCase()), via: `token:${record.id}`, scope: record.scope };
      return;
    }
    const user = sessionUser(request);
    if (user) request.principal = { ...user, operator: operators.has(principalName(user).toLowerCase()), via: 'session', scope: null };
  });
});

/** The person of the login session, if the session plugin is there and holds one. */
function sessionUser(request: FastifyRequest): { forge: ForgeKind; login: string } | undefined {
  const session = (request as { session?: { get(key: string): unknown } }).session;
  const user = session?.get('user') as { forge?: unknown; login?: unknown } | undefined;
  if (!user || (user.forge !== 'github' && user.forge !== 'gitea') || typeof user.login !== 'string') return undefined;
  return { forge: user.forge, login: user.login };
}

/** The token of a Bearer `Authorization` header, or the password of a Basic one. */
function cacheToken(authorization: string): string | undefined {
  const [kind, encoded] = authorization.split(' ', 2);
  if (kind?.toLowerCase() === 'bearer') return encoded;
  if (kind?.toLowerCase() !== 'basic' || !encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}
