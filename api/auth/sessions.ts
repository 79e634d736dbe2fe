/**
 * The login session: a cookie encrypted and signed with a key derived from `api.cookie-secret-file`
 * (@fastify/secure-session: nothing is stored on the server, so any API process reads it),
 * `HttpOnly`, `SameSite=Lax`, and `Secure` when the public URL is https. CSRF tokens
 * (@fastify/csrf-protection) are kept in the same session; forms post them as `_csrf`.
 */
import { createHash } from 'node:crypto';
import cookie from '@fastify/cookie';
import csrfProtection from '@fastify/csrf-protection';
import secureSession from '@fastify/secure-session';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../../config/types.ts';
import { ApiSetupError } from '../errors.ts';
import { sharedPlugin } from '../plugins/shared.ts';

declare module '@fastify/secure-session' {
  interface SessionData {
    user: { forge: 'github' | 'gitea'; login: string };
  }
}

export const SESSION_COOKIE = 'harmonia-ci-session';
/** Sessions last a working week; permissions inside them are asked of the forge again far sooner. */
const SESSION_SECONDS = 7 * 24 * 3600;
const MIN_SECRET_LENGTH = 32;

export interface SessionPluginOptions {
  config: ServerConfig;
}

/** Registers cookies, sessions, CSRF protection and a parser for HTML form posts; nothing without a cookie secret. */
export const sessionPlugin = sharedPlugin<SessionPluginOptions>('sessions', async (app, { config }) => {
  // Forms post application/x-www-form-urlencoded; repeated fields keep their last value.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  const secretFile = config.api.cookieSecretFile;
  if (!secretFile) return;
  const secret = await secretFile.read();
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ApiSetupError(`${secretFile.key} (${secretFile.path}) holds ${secret.length} characters; use at least ${MIN_SECRET_LENGTH} random ones, e.g. \`openssl rand -base64 48\``);
  }
  await app.register(cookie);
  await app.register(secureSession, {
    key: createHash('sha256').update(`harmonia-ci session\0${secret}`).digest(),
    cookieName: SESSION_COOKIE,
    expiry: SESSION_SECONDS,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: config.api.publicUrl.startsWith('https:') },
  });
  await app.register(csrfProtection, { sessionPlugin: '@fastify/secure-session' });
});

/** Whether sessions (and so logins and CSRF tokens) are configured. */
export function sessionsEnabled(request: FastifyRequest): boolean {
  return (request as { session?: unknown }).session !== undefined;
}

/** A CSRF token for the forms of a page shown to a logged-in person. */
export function csrfToken(reply: FastifyReply): string {
  return reply.generateCsrf();
}

/**
 * A preHandler refusing a state-changing request carried by the session cookie without a valid
 * CSRF token (403). A request with an API token carries no cookie authority and needs none.
 */
export function csrfGuard(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  if (request.principal?.via !== 'session') return done();
  request.server.csrfProtection(request, reply, done);
}
