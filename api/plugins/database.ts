/** Decorates the app with the PostgreSQL pool (`app.db`) and ends it on close when the app opened it. */
import type { Pool } from 'pg';
import { createPool } from '../../db/pool.ts';
import { sharedPlugin } from './shared.ts';

declare module 'fastify' {
  interface FastifyInstance {
    db: Pool;
  }
}

export type DatabasePluginOptions =
  /** A pool owned by the caller: the app uses it and leaves it open. */
  | { pool: Pool }
  /** The app opens a pool to this URL and ends it when it closes. */
  | { databaseUrl: string };

/** Registers `app.db`. */
export const databasePlugin = sharedPlugin<DatabasePluginOptions>('database', async (app, options) => {
  if ('pool' in options) {
    app.decorate('db', options.pool);
    return;
  }
  const pool = createPool(options.databaseUrl);
  app.decorate('db', pool);
  app.addHook('onClose', async () => pool.end());
});
