/**
 * `/ci/settings/tokens`: a logged-in person creates, lists and revokes their own API tokens. The
 * secret is shown once, on the page that answers the creation; only its hash is stored. `GET
 * /api/whoami` tells a script or `harmonia-ci login` whom its token acts for. Creation and revocation
 * are rate-limited and audited.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Right } from '../../access/rights.ts';
import { createToken, listTokens, revokeToken } from '../../access/tokens.ts';
import type { ServerConfig } from '../../config/types.ts';
import { parseDuration } from '../../config/units.ts';
import { finishAction } from '../auth/act.ts';
import { accountView } from '../auth/account.ts';
import { writeAudit } from '../auth/audit.ts';
import { principalName, type Principal } from '../auth/principal.ts';
import { csrfGuard, sessionsEnabled } from '../auth/sessions.ts';
import { errorResponses } from '../error-handler.ts';
import { NotFoundError, UnauthorizedError } from '../errors.ts';
import { html } from '../views/html.ts';
import { renderTokensBody, TOKEN_EXPIRIES } from '../views/tokens.ts';
import { sendPage } from './dashboard.ts';

export interface TokenRouteOptions {
  config: ServerConfig;
}

/** Token requests one address may make per minute: plenty for a person, too few to mint tokens in bulk. */
export const TOKEN_RATE = { max: 10, timeWindow: '1 minute' };
const PAGE = '/ci/settings/tokens';

interface CreateBody {
  scope: Right;
  expires: string;
  description?: string;
}

/** The person of the login session; tokens are managed by people, not by other tokens. */
function sessionPerson(request: FastifyRequest): Principal {
  const principal = request.principal;
  if (principal?.via !== 'session') throw new UnauthorizedError(`log in with your forge to manage your API tokens at ${PAGE}`);
  return principal;
}

/** Registers the tokens page, its forms and `/api/whoami`. */
export async function tokenRoutes(app: FastifyInstance, { config }: TokenRouteOptions): Promise<void> {
  await app.register(rateLimit, { global: false });
  const publicUrl = config.api.publicUrl.replace(/\/+$/, '');
  const htmlResponse = { 200: { content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses };

  const page = async (request: FastifyRequest, reply: FastifyReply, created?: { id: string; token: string; expiresAt: string | null }) => {
    const account = accountView(request, reply, config);
    if (!sessionsEnabled(request) || request.principal?.via !== 'session' || !account || !('csrf' in account)) {
      const body = html`<section class="panel"><h2>API tokens</h2><p class="lead">Log in with your forge to create and revoke your API tokens.</p></section>`;
      return sendPage(reply, { title: 'API tokens · harmonia-ci', body, account, status: 401 });
    }
    const tokens = await listTokens(app.db, request.principal);
    return sendPage(reply, { title: 'API tokens · harmonia-ci', body: renderTokensBody(tokens, { csrf: account.csrf, created, publicUrl }), account });
  };

  app.get(PAGE, { schema: { response: htmlResponse } }, async (request, reply) => page(request, reply));

  app.post<{ Body: CreateBody }>(
    PAGE,
    {
      config: { rateLimit: TOKEN_RATE },
      preHandler: csrfGuard,
      schema: {
        body: {
          type: 'object',
          required: ['scope', 'expires'],
          properties: {
            scope: { type: 'string', enum: ['read', 'write', 'admin'] },
            expires: { type: 'string', enum: TOKEN_EXPIRIES.map(([value]) => value) },
            description: { type: 'string', maxLength: 200 },
            _csrf: { type: 'string' },
          },
        },
        response: htmlResponse,
      },
    },
    async (request, reply) => {
      const person = sessionPerson(request);
      const { scope, expires, description = '' } = request.body;
      const expiresAt = expires === 'never' ? null : new Date(Date.now() + parseDuration(expires)!);
      const created = await createToken(app.db, { forge: person.forge, login: person.login, scope, expiresAt, description });
      await writeAudit(app.db, request, {
        actor: principalName(person),
        via: person.via,
        action: 'token.create',
        target: `token ${created.id}`,
        outcome: `scope ${scope}, expires ${created.expiresAt ?? 'never'}`,
      });
      return page(request, reply, created);
    },
  );

  app.post<{ Params: { id: string } }>(
    `${PAGE}/:id/revoke`,
    {
      config: { rateLimit: TOKEN_RATE },
      preHandler: csrfGuard,
      schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } } },
    },
    async (request, reply) => {
      const person = sessionPerson(request);
      if (!(await revokeToken(app.db, request.params.id, person))) throw new NotFoundError(`you have no live token #${request.params.id}; ${PAGE} lists yours`);
      return finishAction(request, reply, person, { action: 'token.revoke', target: `token ${request.params.id}`, message: `token #${request.params.id} revoked; it stops working at once`, page: PAGE });
    },
  );

  const whoami = { forge: { type: 'string' }, login: { type: 'string' }, operator: { type: 'boolean' }, via: { type: 'string' }, scope: { type: ['string', 'null'] } };
  app.get(
    '/api/whoami',
    // Whom the request's token or session acts for, and with what scope.
    { config: { rateLimit: TOKEN_RATE }, schema: { response: { 200: { type: 'object', required: Object.keys(whoami), properties: whoami }, ...errorResponses } } },
    async (request) => {
      if (!request.principal) throw new UnauthorizedError('send an API token as Authorization: Bearer (create one at /ci/settings/tokens), or log in');
      return request.principal;
    },
  );
}
