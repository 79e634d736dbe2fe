/** `GET /` and `GET /ci/`: the entry points a person opens in a browser. */
import type { FastifyInstance } from 'fastify';
import { listEvalPage, listParkedDeliveries } from '../../queries/index.ts';
import type { ServerConfig } from '../../config/types.ts';
import { accountView } from '../auth/account.ts';
import { errorResponses } from '../error-handler.ts';
import { renderLandingPage } from '../views/landing.ts';
import { EVALS_PER_PAGE } from './dashboard.ts';

export interface LandingRouteOptions {
  temporalUiUrl?: string | undefined;
  config: ServerConfig;
}

/** Registers the root redirect and the landing page. */
export async function landingRoutes(app: FastifyInstance, { temporalUiUrl, config }: LandingRouteOptions): Promise<void> {
  app.get(
    '/',
    { schema: { description: 'Redirects to the dashboard.', response: { 302: { type: 'null' }, ...errorResponses } } },
    async (_request, reply) => reply.redirect('/ci/', 302),
  );

  app.get<{ Querystring: { before?: string } }>(
    '/ci/',
    {
      schema: {
        // Parked webhook deliveries if any, recent evals across projects (paginated with `before`), and a live components panel.
        querystring: { type: 'object', properties: { before: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
        response: { 200: { content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { hidden } = await app.access.visibility(request);
      const [evals, parked] = await Promise.all([
        listEvalPage(app.db, { limit: EVALS_PER_PAGE, before: request.query.before, hidden }),
        listParkedDeliveries(app.db, { limit: 20, hidden }),
      ]);
      const account = accountView(request, reply, config);
      const page = renderLandingPage({ temporalUiUrl, evals, newest: request.query.before ? '/ci/' : null, parked, account });
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page);
    },
  );
}
