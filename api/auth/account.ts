/** What the page header shows of the person looking at it. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../../config/types.ts';
import type { AccountView } from '../views/layout.ts';
import { sessionsEnabled } from './sessions.ts';

/** The logged-in person with a CSRF token for the page's forms, or the forges to log in with. */
export function accountView(request: FastifyRequest, reply: FastifyReply, config: ServerConfig): AccountView | undefined {
  if (!sessionsEnabled(request)) return undefined;
  const principal = request.principal;
  if (principal?.via === 'session') return { login: `${principal.login} (${principal.forge})`, csrf: reply.generateCsrf() };
  const loginWith = (['github', 'gitea'] as const).filter((forge) => config.auth[forge] !== undefined);
  return loginWith.length > 0 ? { loginWith } : undefined;
}
