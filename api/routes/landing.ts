/** `GET /` and `GET /ci/`: the entry points a person opens in a browser. */
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../error-handler.ts';
import { renderLandingPage } from '../views/landing.ts';

export interface LandingRouteOptions {
  temporalUiUrl?: string | undefined;
}

/** Registers the root redirect and the landing page. */
export async function landingRoutes(app: FastifyInstance, { temporalUiUrl }: LandingRouteOptions): Promise<void> {
  app.get(
    '/',
    { schema: { description: 'Redirects to the dashboard.', response: { 302: { type: 'null' }, ...errorResponses } } },
    async (_request, reply) => reply.redirect('/ci/', 302),
  );

  const page = renderLandingPage({ temporalUiUrl });
  app.get(
    '/ci/',
    {
      schema: {
        description: 'Landing page with a live components panel.',
        response: { 200: { content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses },
      },
    },
    async (_request, reply) => reply.type('text/html; charset=utf-8').send(page),
  );
}
