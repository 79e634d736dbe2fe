/** Starting the API on a TCP port: shared by `harmonia-ci api` and `harmonia-ci dev`. */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildAppOptions } from './app.ts';
import { ApiSetupError } from './errors.ts';

export interface ApiServer {
  app: FastifyInstance;
  /** Base URL that reaches the listener from this machine, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Stops listening and closes what the app opened. */
  close(): Promise<void>;
}

export interface StartApiServerOptions extends BuildAppOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

function localUrl(host: string, port: number): string {
  // A wildcard address is reachable on loopback; IPv6 literals need brackets in URLs.
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** Builds the app, opens its dependencies and listens; on failure closes whatever it opened. */
export async function startApiServer({ host, port, ...options }: StartApiServerOptions): Promise<ApiServer> {
  const app = buildApp(options);
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ApiSetupError(`port ${port} on ${host} is already in use: stop what listens there or choose another port (--port, HARMONIA_CI_API_PORT)`, {
        cause: error,
      });
    }
    throw error;
  }
  const { port: bound } = app.server.address() as AddressInfo;
  return { app, url: localUrl(host, bound), close: () => app.close() };
}
