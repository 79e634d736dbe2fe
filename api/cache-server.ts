/**
 * Serving the binary cache alone on a TCP port, without the database or Temporal the full API
 * needs: what `harmonia-ci cache serve` starts.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { CacheBackend } from '../cache/types.ts';
import { installErrorHandlers } from './error-handler.ts';
import { ApiSetupError } from './errors.ts';
import { cacheRoutes } from './routes/cache.ts';

export interface CacheServer {
  app: FastifyInstance;
  /** The port the listener took (the one asked for, or a free one for 0). */
  port: number;
  /** Stops listening; the backend stays open, it belongs to the caller. */
  close(): Promise<void>;
}

export interface StartCacheServerOptions {
  backend: CacheBackend;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** None: the server logs nothing. */
  log?: FastifyBaseLogger;
}

/** Serves `backend`'s cache routes on `host:port`; on failure closes the listener and leaves the backend open. */
export async function startCacheServer({ backend, host, port, log }: StartCacheServerOptions): Promise<CacheServer> {
  const app = log ? Fastify({ loggerInstance: log, return503OnClosing: true }) : Fastify({ logger: false, return503OnClosing: true });
  try {
    installErrorHandlers(app);
    await app.register(cacheRoutes, { backend });
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ApiSetupError(`port ${port} on ${host} is already in use: choose another with --port`, { cause: error });
    }
    throw error;
  }
  return { app, port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}
