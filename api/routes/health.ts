/** `GET /healthz`: every component's state; 200 only when all required ones are ok. */
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../error-handler.ts';
import { checkHealth } from '../health-report.ts';

const componentSchema = {
  type: 'object',
  required: ['status', 'required', 'message', 'latencyMs'],
  properties: {
    status: { type: 'string', enum: ['ok', 'failed', 'not configured'] },
    required: { type: 'boolean' },
    message: { type: 'string' },
    latencyMs: { type: 'integer' },
  },
} as const;

const reportSchema = {
  type: 'object',
  required: ['status', 'checkedAt', 'failed', 'components'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    checkedAt: { type: 'string', format: 'date-time' },
    failed: { type: 'array', items: { type: 'string' } },
    components: { type: 'object', additionalProperties: componentSchema },
  },
} as const;

/** Registers the health route. */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/healthz',
    {
      // Dashboards and orchestrators poll this every few seconds: log only problems.
      logLevel: 'warn',
      schema: {
        description: 'State of the database, Temporal, cache storage, builders and parked webhook deliveries.',
        querystring: { type: 'object', additionalProperties: false, properties: {} },
        response: { 200: reportSchema, 503: reportSchema, ...errorResponses },
      },
    },
    async (_request, reply) => {
      const report = await checkHealth({ pool: app.db, temporal: app.temporal, cacheStorage: app.cacheStorage });
      if (report.status !== 'ok') reply.log.warn({ failed: report.failed }, 'health check failed');
      return reply.code(report.status === 'ok' ? 200 : 503).header('cache-control', 'no-store').send(report);
    },
  );
}
