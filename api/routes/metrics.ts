/** `GET /metrics`: the fleet's state in Prometheus' text format, refreshed from PostgreSQL every few seconds. */
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../error-handler.ts';
import type { ApiMetrics } from '../plugins/metrics.ts';

export interface MetricsRouteOptions {
  metrics: ApiMetrics;
}

/** Registers the metrics route. */
export async function metricsRoutes(app: FastifyInstance, { metrics }: MetricsRouteOptions): Promise<void> {
  app.get(
    '/metrics',
    {
      // Prometheus scrapes this every few seconds: log only problems.
      logLevel: 'warn',
      schema: {
        description: 'Prometheus metrics: evals, builds, builder queues and nodes, projects, webhook deliveries, cache requests.',
        querystring: { type: 'object', additionalProperties: false, properties: {} },
        response: errorResponses,
      },
    },
    async (_request, reply) => {
      await metrics.refresh(app.db);
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}
