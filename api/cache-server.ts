/**
 * Serving the binary cache alone on a TCP port, without the database or Temporal the full API
 * needs: what `harmonia-ci cache serve` starts.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { StoreCacheSource } from '../cache/store-source.ts';
import type { CacheBackend } from '../cache/types.ts';
import { installErrorHandlers } from './error-handler.ts';
import { ApiSetupError } from './errors.ts';
import { cacheRoutes } from './routes/cache.ts';
import { storeCacheRoutes } from './routes/store-cache.ts';

export interface CacheServer {
  app: FastifyInstance;
  /** The port the listener took (the one asked for, or a free one for 0). */
  port: number;
  /** Stops listening; the backend or store stays open, it belongs to the caller. */
  close(): Promise<void>;
}

/** What to serve: a cache backend (directory, S3), or a live store through its daemon. */
export type StartCacheServerOptions = ({ backend: CacheBackend } | { store: StoreCacheSource }) & CacheListenOptions;

interface CacheListenOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** None: the server logs nothing. */
  log?: FastifyBaseLogger;
}

/** Serves the cache routes on `host:port`; on failure closes the listener and leaves the backend open. */
export async function startCacheServer(options: StartCacheServerOptions): Promise<CacheServer> {
  const { host, port, log } = options;
  const app = log ? Fastify({ loggerInstance: log, return503OnClosing: true }) : Fastify({ logger: false, return503OnClosing: true });
  try {
    installErrorHandlers(app);
    if ('store' in options) await app.register(storeCacheRoutes, { source: options.store });
    else await app.register(cacheRoutes, { backend: options.backend });
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
