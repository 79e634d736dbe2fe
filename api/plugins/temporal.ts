/**
 * Decorates the app with a Temporal client (`app.temporal`) and closes its connection on close
 * when the app opened it. The app's own connection is lazy: the API starts and accepts webhooks
 * while Temporal is away (deliveries wait in PostgreSQL), `/healthz` says Temporal is down, and
 * calls succeed once it answers; a background check logs when it is first reached.
 */
import { Client, Connection } from '@temporalio/client';
import { dataConverterOf, loadTlsConfig, type TemporalConnectionConfig } from '../../temporal/connection.ts';
import { sharedPlugin } from './shared.ts';

declare module 'fastify' {
  interface FastifyInstance {
    temporal: Client;
  }
}

export type TemporalPluginOptions =
  /** A client owned by the caller: the app uses it and leaves it open. */
  | { client: Client }
  /** The app connects lazily with these settings and closes the connection when it closes. */
  | { settings: () => Promise<TemporalConnectionConfig> };

const FIRST_CONTACT_RETRY_MS = [1_000, 5_000, 15_000, 60_000];
const CONTACT_DEADLINE_MS = 5_000;

/** Registers `app.temporal`. */
export const temporalPlugin = sharedPlugin<TemporalPluginOptions>('temporal', async (app, options) => {
  if ('client' in options) {
    app.decorate('temporal', options.client);
    return;
  }
  const settings = await options.settings();
  // TLS files and the API key are read now: a wrong path is a setup error, not an outage.
  // No SDK retries (interceptors: []): while Temporal is away a call fails at once instead of
  // retrying for ~15 s on timers that outlive the app's close; the dispatcher and this plugin's
  // contact loop retry on their own schedule, and a route's caller can try again.
  const connection = Connection.lazy({ address: settings.address, tls: await loadTlsConfig(settings.tls), apiKey: settings.apiKey, interceptors: [] });
  const dataConverter = dataConverterOf(settings);
  const client = new Client({ connection, namespace: settings.namespace, ...(dataConverter ? { dataConverter } : {}) });
  app.decorate('temporal', client);

  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const contact = async (attempt: number): Promise<void> => {
    try {
      await connection.withDeadline(Date.now() + CONTACT_DEADLINE_MS, () => connection.workflowService.describeNamespace({ namespace: settings.namespace }));
      app.log.info({ address: settings.address, namespace: settings.namespace }, 'connected to Temporal');
    } catch (error) {
      if (closed) return;
      const retryInMs = FIRST_CONTACT_RETRY_MS[Math.min(attempt, FIRST_CONTACT_RETRY_MS.length - 1)]!;
      app.log.warn(
        { err: error, address: settings.address, namespace: settings.namespace, retryInMs },
        'Temporal does not answer yet: webhooks are stored and signalled once it does; check temporal.address and the namespace',
      );
      timer = setTimeout(() => void contact(attempt + 1), retryInMs);
      timer.unref();
    }
  };
  app.addHook('onReady', async () => void contact(0));
  app.addHook('onClose', async () => {
    closed = true;
    clearTimeout(timer);
    await connection.close();
  });
});
