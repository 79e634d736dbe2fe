/**
 * The one error handler of the app: 4xx messages (validation, typed HttpErrors,
 * Fastify's own client errors) pass through; 5xx details stay in the log and the
 * client gets `internal error` plus the request id to quote when reporting it, except a
 * RetryLaterError, whose message names the component that is down.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, RetryLaterError } from './errors.ts';

/** JSON schema of every error body, registered once and referenced by routes. */
export const httpErrorSchema = {
  $id: 'HttpError',
  type: 'object',
  required: ['error', 'requestId'],
  properties: {
    error: { type: 'string' },
    requestId: { type: 'string' },
  },
} as const;

/** Response schema entries that every route declares for its failures. */
export const errorResponses = {
  '4xx': { $ref: 'HttpError#' },
  '5xx': { $ref: 'HttpError#' },
} as const;

function statusOf(error: FastifyError): number {
  const status = error.statusCode;
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500;
}

/** Installs the error and not-found handlers on the root instance. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.addSchema(httpErrorSchema);

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const status = statusOf(error);
    if (error instanceof HttpError && error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
    if (error instanceof RetryLaterError) {
      request.log.warn({ err: error, url: request.url, method: request.method }, 'request refused until a component is back');
      return reply.code(status).send({ error: error.message, requestId: request.id });
    }
    if (status >= 500) {
      request.log.error({ err: error, url: request.url, method: request.method }, 'request failed');
      return reply.code(status).send({ error: 'internal error', requestId: request.id });
    }
    request.log.info({ status, reason: error.message }, 'request rejected');
    return reply.code(status).send({ error: error.message, requestId: request.id });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `no route for ${request.method} ${request.url}`, requestId: request.id }),
  );
}
