/**
 * Logging in with a forge: `/auth/<forge>/login` sends the browser to the forge's OAuth
 * authorization page (@fastify/oauth2, with a state cookie and PKCE), `/auth/<forge>/callback`
 * trades the code for the person's token, asks the forge who they are (`GET /user`), and keeps
 * only the forge and login in the session: the token is used once and dropped, since rights are
 * asked of the forge with the CI's own credentials. `POST /auth/logout` ends the session.
 */
import oauth2, { type OAuth2Namespace } from '@fastify/oauth2';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../../config/types.ts';
import type { ForgeKind } from '../../forges/types.ts';
import { writeAudit } from '../auth/audit.ts';
import { csrfGuard } from '../auth/sessions.ts';
import { ApiSetupError, BadRequestError, UnauthorizedError } from '../errors.ts';

export interface AuthRoutesOptions {
  config: ServerConfig;
}

/** Login attempts one address may start per minute: enough for people, too few to hammer a forge. */
export const LOGIN_RATE = { max: 20, timeWindow: '1 minute' };

interface Provider {
  forge: ForgeKind;
  authorizeUrl: string;
  clientId: string;
  clientSecret: string;
  /** The forge API's `GET /user`. */
  userUrl: string;
}

async function providers(config: ServerConfig): Promise<Provider[]> {
  const found: Provider[] = [];
  const { github, gitea } = config.auth;
  if (github) {
    if (!config.forges.github) throw new ApiSetupError('auth.github needs forges.github: rights are read from GitHub with the CI\'s own credentials');
    found.push({ forge: 'github', authorizeUrl: github.url ?? 'https://github.com', clientId: github.clientId, clientSecret: await github.clientSecretFile.read(), userUrl: `${config.forges.github.apiUrl.replace(/\/+$/, '')}/user` });
  }
  if (gitea) {
    if (!config.forges.gitea) throw new ApiSetupError('auth.gitea needs forges.gitea: rights are read from Gitea with the CI\'s own credentials');
    const base = config.forges.gitea.url.replace(/\/+$/, '');
    found.push({ forge: 'gitea', authorizeUrl: gitea.url ?? base, clientId: gitea.clientId, clientSecret: await gitea.clientSecretFile.read(), userUrl: `${base}/api/v1/user` });
  }
  if (found.length > 0 && !config.api.cookieSecretFile) throw new ApiSetupError('logging in needs api.cookie-secret-file: a file of at least 32 random characters that keys the session cookie');
  return found;
}

/** Who the token belongs to, as the forge says. */
async function forgeLogin(provider: Provider, accessToken: string): Promise<string> {
  const response = await fetch(provider.userUrl, { headers: { accept: 'application/json', authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(15_000) });
  const body = (await response.json().catch(() => ({}))) as { login?: unknown };
  if (!response.ok || typeof body.login !== 'string' || body.login === '') throw new UnauthorizedError(`${provider.forge} did not say who logged in (${response.status}); try again`);
  return body.login;
}

/** Registers the login, callback and logout routes of each configured forge. */
export async function authRoutes(app: FastifyInstance, { config }: AuthRoutesOptions): Promise<void> {
  const found = await providers(config);
  // The login links are registered by @fastify/oauth2 without route options: they get the login rate here.
  app.addHook('onRoute', (route) => {
    if (/^\/auth\/[a-z]+\/login$/.test(route.url)) route.config = { ...(route.config as object), rateLimit: LOGIN_RATE };
  });
  await app.register(rateLimit, { global: false });
  const secure = config.api.publicUrl.startsWith('https:');
  const publicUrl = config.api.publicUrl.replace(/\/+$/, '');

  for (const provider of found) {
    const name = `${provider.forge}OAuth2`;
    const base = provider.authorizeUrl.replace(/\/+$/, '');
    await app.register(oauth2, {
      name,
      scope: provider.forge === 'github' ? [] : ['read:user'],
      credentials: {
        client: { id: provider.clientId, secret: provider.clientSecret },
        auth: { authorizeHost: base, authorizePath: '/login/oauth/authorize', tokenHost: base, tokenPath: '/login/oauth/access_token' },
      },
      startRedirectPath: `/auth/${provider.forge}/login`,
      callbackUri: `${publicUrl}/auth/${provider.forge}/callback`,
      pkce: 'S256',
      cookie: { path: '/auth/', httpOnly: true, sameSite: 'lax', secure },
    });
    const flow = (app as unknown as Record<string, OAuth2Namespace>)[name]!;

    app.get(`/auth/${provider.forge}/callback`, { config: { rateLimit: LOGIN_RATE } }, async (request: FastifyRequest, reply: FastifyReply) => {
      if (!request.session) throw new BadRequestError('logging in needs api.cookie-secret-file');
      const refused = (request.query as { error?: unknown }).error;
      if (refused !== undefined) throw new UnauthorizedError(`${provider.forge} refused the login (${String(refused)}); start again from the login link`);
      let token: string;
      try {
        token = (await flow.getAccessTokenFromAuthorizationCodeFlow(request, reply)).token.access_token;
      } catch (error) {
        request.log.info({ err: error }, 'login refused');
        throw new UnauthorizedError(`${provider.forge} did not confirm the login (${(error as Error).message}); start again from the login link`);
      }
      const login = await forgeLogin(provider, token);
      request.session.set('user', { forge: provider.forge, login });
      app.access.forget(provider.forge, login);
      await writeAudit(app.db, request, { actor: `${provider.forge}:${login}`, via: 'session', action: 'login', target: `${provider.forge}:${login}`, outcome: 'ok' });
      return reply.redirect('/ci/', 303);
    });
  }

  app.post('/auth/logout', { preHandler: csrfGuard }, async (request, reply) => {
    if (request.principal?.via === 'session') {
      await writeAudit(app.db, request, { actor: `${request.principal.forge}:${request.principal.login}`, via: 'session', action: 'logout', target: `${request.principal.forge}:${request.principal.login}`, outcome: 'ok' });
      request.session.delete();
    }
    return reply.redirect('/ci/', 303);
  });
}

