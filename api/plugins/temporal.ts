/** Decorates the app with a Temporal client (`app.temporal`) and closes its connection on close when the app opened it. */
import type { Client } from '@temporalio/client';
import { sharedPlugin } from './shared.ts';

declare module 'fastify' {
  interface FastifyInstance {
    temporal: Client;
  }
}

export type TemporalPluginOptions =
  /** A client owned by the caller: the app uses it and leaves it open. */
  | { client: Client }
  /** The app connects while starting and closes the connection when it closes. */
  | { connect: () => Promise<Client> };

/** Registers `app.temporal`. */
export const temporalPlugin = sharedPlugin<TemporalPluginOptions>('temporal', async (app, options) => {
  if ('client' in options) {
    app.decorate('temporal', options.client);
    return;
  }
  const client = await options.connect();
  app.decorate('temporal', client);
  app.addHook('onClose', async () => client.connection.close());
});
