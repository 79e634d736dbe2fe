/**
 * Decorates the app with the webhook delivery dispatcher (`app.deliveries`): it signals stored
 * deliveries to their ref workflows while the app is up, retrying while Temporal is down, and
 * stops with the app. Routes that accept a delivery kick it.
 */
import { createDeliveryDispatcher, type DeliveryDispatcher } from '../../forges/dispatcher.ts';
import type { Forges } from '../../forges/types.ts';
import { sharedPlugin } from './shared.ts';

declare module 'fastify' {
  interface FastifyInstance {
    deliveries: DeliveryDispatcher;
  }
}

/** Registers `app.deliveries`; needs `app.db` and `app.temporal`. */
export const deliveriesPlugin = sharedPlugin<{ forges: Forges }>('deliveries', async (app, { forges }) => {
  const dispatcher = createDeliveryDispatcher({ pool: app.db, client: app.temporal, forges, log: app.log });
  app.decorate('deliveries', dispatcher);
  app.addHook('onReady', async () => dispatcher.start());
  app.addHook('onClose', async () => dispatcher.stop());
});
