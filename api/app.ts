/**
 * The Fastify app factory. Dependencies are plugins that decorate the instance
 * (`app.db`, `app.temporal`, `app.cacheStorage`); a dependency passed in `deps`
 * belongs to the caller, one the app opens from `config` is closed with the app.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import type { ServerConfig } from '../config/types.ts';
import { createForges } from '../forges/index.ts';
import { installErrorHandlers } from './error-handler.ts';
import { installSecurityHeaders } from './security-headers.ts';
import { ApiSetupError } from './errors.ts';
import type { CacheBackend } from '../cache/types.ts';
import { cacheStoragePlugin } from './plugins/cache-storage.ts';
import { cacheRoutes } from './routes/cache.ts';
import { databasePlugin } from './plugins/database.ts';
import { deliveriesPlugin } from './plugins/deliveries.ts';
import { temporalPlugin } from './plugins/temporal.ts';
import { healthRoutes } from './routes/health.ts';
import { projectRoutes } from './routes/projects.ts';
import { webhookRoutes } from './routes/webhook.ts';
import { landingRoutes } from './routes/landing.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { opsRoutes } from './routes/ops.ts';
import { outputNarRoutes, productRoutes } from './routes/products.ts';
import { deliveryRoutes } from './routes/deliveries.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { createApiMetrics } from './plugins/metrics.ts';
import { temporalConnectionConfig } from '../temporal/settings.ts';
import { accessPlugin } from './auth/access.ts';
import { sessionPlugin } from './auth/sessions.ts';
import { authRoutes } from './routes/auth.ts';
import { actionRoutes } from './routes/actions.ts';
import { cacheGuard } from './auth/cache-guard.ts';
import { tokenRoutes } from './routes/tokens.ts';

/** Already-open dependencies; each one given here is used and left open. */
export interface ApiDeps {
  pool?: Pool;
  temporal?: Client;
  /** The binary cache: its routes are served at the root when given. */
  cacheStorage?: CacheBackend | null;
}

export interface BuildAppOptions {
  config: ServerConfig;
  log: FastifyBaseLogger;
  deps?: ApiDeps;
  /** Where people find the Temporal Web UI (linked from `/ci/`). */
  temporalUiUrl?: string | undefined;
}

function databaseOptions(config: ServerConfig, deps: ApiDeps) {
  if (deps.pool) return { pool: deps.pool };
  if (config.database.url) return { databaseUrl: config.database.url };
  throw new ApiSetupError('the API needs PostgreSQL: set database.url (or DATABASE_URL), or run `harmonia-ci dev` for an embedded one');
}

function temporalOptions(config: ServerConfig, deps: ApiDeps) {
  if (deps.temporal) return { client: deps.temporal };
  const { address } = config.temporal;
  if (!address) {
    throw new ApiSetupError('the API needs Temporal: set temporal.address (or TEMPORAL_ADDRESS), or run `harmonia-ci dev` for a local dev server');
  }
  return { settings: () => temporalConnectionConfig(config.temporal, address) };
}

/** Builds the app without listening; call `ready()` or `listen()` on it. */
export function buildApp({ config, log, deps = {}, temporalUiUrl }: BuildAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: log,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  });

  installErrorHandlers(app);
  installSecurityHeaders(app);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.register(databasePlugin, databaseOptions(config, deps));
  app.register(temporalPlugin, temporalOptions(config, deps));
  app.register(cacheStoragePlugin, { storage: deps.cacheStorage ?? null, owned: false });
  const forges = createForges(config.forges);
  // Sessions first: the access plugin reads the session when it decides who is asking.
  app.register(sessionPlugin, { config });
  app.register(accessPlugin, { config, forges });
  app.register(authRoutes, { config });
  app.register(actionRoutes);
  app.register(tokenRoutes, { config });

  app.register(healthRoutes);
  app.register(landingRoutes, { temporalUiUrl, config });
  app.register(dashboardRoutes, { config, temporalUi: temporalUiUrl ? { url: temporalUiUrl, namespace: config.temporal.namespace } : undefined, cache: deps.cacheStorage ?? null });
  const metrics = createApiMetrics();
  app.register(metricsRoutes, { metrics });
  if (deps.cacheStorage) {
    const backend = deps.cacheStorage;
    app.register(async (scope) => cacheRoutes(scope, { backend, metrics: metrics.cache, guard: cacheGuard(app, { hideOutputs: config.auth.hidePrivateOutputs }) }));
  }
  if (deps.cacheStorage) {
    app.register(productRoutes, { backend: deps.cacheStorage });
    app.register(outputNarRoutes, { backend: deps.cacheStorage });
  }
  app.register(opsRoutes);
  app.register(deliveryRoutes);
  app.register(deliveriesPlugin, { forges });
  app.register(webhookRoutes, { config: config.forges, forges });
  app.register(projectRoutes, { config, forges });
  return app;
}
