/**
 * `/ci/nodes`: the builders, with drain and undrain buttons for operators. The table follows an
 * event stream (`/ci/nodes/events`), so a pressed button, a builder that arrives or leaves, and
 * its running builds show in place.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../../config/types.ts';
import { listNodes, type NodeSummary } from '../../queries/index.ts';
import { accountView } from '../auth/account.ts';
import type { EventStreams } from '../dashboard/event-stream.ts';
import { errorResponses } from '../error-handler.ts';
import type { TemporalUi } from '../views/format.ts';
import { renderNodesBody, renderNodesPage } from '../views/nodes.ts';
import { sendPage } from './dashboard.ts';

export interface NodeRouteOptions {
  config: ServerConfig;
  streams: EventStreams;
  temporalUi?: TemporalUi | undefined;
}

/** What the table shows, without the ever-growing seconds since the last heartbeat. */
const versionOf = (nodes: readonly NodeSummary[]): string =>
  JSON.stringify(nodes.map(({ name, draining, running, maxJobs, lastSeenAt, systems, features, version }) => [name, draining, running, maxJobs, lastSeenAt, systems, features, version]));

/** A CSRF token for the drain buttons when an operator is logged in; nothing for anyone else. */
function operatorCsrf(request: FastifyRequest, reply: FastifyReply): string | undefined {
  const principal = request.principal;
  return principal?.via === 'session' && principal.operator ? reply.generateCsrf() : undefined;
}

/** Registers the nodes page and its stream. */
export async function nodeRoutes(app: FastifyInstance, { config, streams, temporalUi }: NodeRouteOptions): Promise<void> {
  const html = { 200: { content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses };

  app.get('/ci/nodes', { schema: { response: html } }, async (request, reply) => {
    const nodes = await listNodes(app.db);
    const body = renderNodesPage(nodes, { csrf: operatorCsrf(request, reply), liveUrl: `/ci/nodes/events?v=${encodeURIComponent(versionOf(nodes))}` });
    return sendPage(reply, { title: 'Nodes · harmonia-ci', body, temporalUi, account: accountView(request, reply, config) });
  });

  app.get<{ Querystring: { v?: string } }>(
    '/ci/nodes/events',
    { schema: { querystring: { type: 'object', properties: { v: { type: 'string', maxLength: 100_000 } } }, response: { 200: { content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses } } },
    async (request, reply) => {
      const csrf = operatorCsrf(request, reply);
      streams.start(request, reply, (known) => {
        let seen = known;
        return async (sink) => {
          const nodes = await listNodes(app.db);
          const version = versionOf(nodes);
          if (version !== seen) {
            sink.send('swap', { nodes: renderNodesBody(nodes, csrf).value }, version);
            seen = version;
          }
          return 'continue';
        };
      });
    },
  );
}
