/** `GET /api/deliveries?status=parked`: webhook deliveries the dispatcher gave up on, with their errors. */
import type { FastifyInstance } from 'fastify';
import { listParkedDeliveries } from '../../queries/index.ts';
import { errorResponses } from '../error-handler.ts';

const string = { type: 'string' } as const;
const deliveryProperties = {
  id: string,
  forge: string,
  deliveryId: string,
  event: string,
  project: string,
  ref: string,
  failures: { type: 'integer' },
  error: { type: ['string', 'null'] },
  receivedAt: string,
  parkedAt: string,
};

/** Registers the deliveries route. */
export async function deliveryRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: { status: 'parked'; project?: string; limit?: number } }>(
    '/api/deliveries',
    {
      // Parked webhook deliveries, newest first: redelivering one from the forge retries it.
      schema: {
        querystring: {
          type: 'object',
          required: ['status'],
          additionalProperties: false,
          properties: {
            // Only parked ones: the others are either done or still being retried.
            status: { type: 'string', enum: ['parked'] },
            project: { type: 'string', minLength: 1 },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          },
        },
        response: {
          200: { type: 'array', items: { type: 'object', required: Object.keys(deliveryProperties), properties: deliveryProperties } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { hidden } = await app.access.visibility(request);
      return listParkedDeliveries(app.db, { project: request.query.project, limit: request.query.limit ?? 50, hidden });
    },
  );
}
