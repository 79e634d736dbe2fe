/**
 * The health report `/healthz` serves: every component the API depends on, checked at once.
 * The database and Temporal checks live with those components (db/health.ts,
 * temporal/health.ts), where `harmonia-ci dev` also runs them one by one.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { checkDatabase } from '../db/health.ts';
import { timedCheck, type ComponentHealth, type HealthReport } from '../lib/health.ts';
import { countParkedDeliveries } from '../queries/deliveries.ts';
import { countRecentNodes } from '../queries/nodes.ts';
import { checkTemporal } from '../temporal/health.ts';
import type { CacheStorage } from './plugins/cache-storage.ts';

export interface HealthDeps {
  pool: Pool;
  temporal: Client;
  cacheStorage: CacheStorage | null;
}

/** The binary cache storage is configured (the API serves it when present). */
export async function checkCacheStorage(storage: CacheStorage | null): Promise<ComponentHealth> {
  if (!storage) return { status: 'not configured', required: false, message: 'no binary cache storage configured', latencyMs: 0 };
  return timedCheck(true, async () => {
    await storage.check();
    return storage.description;
  });
}

/** Builders that reported in during the last minute, from the `nodes` table when it exists. */
export async function checkBuilders(pool: Pool): Promise<ComponentHealth> {
  let tableMissing = false;
  const health = await timedCheck(false, async () => {
    const seen = await countRecentNodes(pool);
    tableMissing = seen === undefined;
    if (!seen) return 'no nodes table (database not migrated)';
    return `${seen.alive} seen in the last minute${seen.draining > 0 ? ` (${seen.draining} draining)` : ''}`;
  });
  return tableMissing ? { ...health, status: 'not configured' } : health;
}

/** Webhook deliveries the dispatcher parked: `failed` (not required) while any waits for a person. */
export async function checkWebhooks(pool: Pool): Promise<ComponentHealth> {
  let parked: number | undefined;
  const health = await timedCheck(false, async () => {
    parked = await countParkedDeliveries(pool);
    return parked === undefined ? 'no deliveries table (database not migrated)' : 'no delivery parked';
  });
  if (parked === undefined) return health.status === 'ok' ? { ...health, status: 'not configured' } : health;
  if (parked === 0) return health;
  return {
    ...health,
    status: 'failed',
    message: `${parked} ${parked === 1 ? 'delivery' : 'deliveries'} parked after repeated failures (GET /api/deliveries?status=parked); redeliver from the forge once fixed`,
  };
}

/** Runs every check at once and folds them into one report. */
export async function checkHealth(deps: HealthDeps): Promise<HealthReport> {
  const [database, temporal, cacheStorage, builders, webhooks] = await Promise.all([
    checkDatabase(deps.pool),
    checkTemporal(deps.temporal),
    checkCacheStorage(deps.cacheStorage),
    checkBuilders(deps.pool),
    checkWebhooks(deps.pool),
  ]);
  // Deliveries wait in PostgreSQL meanwhile: say so, so that nobody redelivers them by hand.
  if (temporal.status === 'failed' && database.status === 'ok') temporal.message += '; webhooks are still accepted and signalled once Temporal answers';
  const components: Record<string, ComponentHealth> = { database, temporal, cacheStorage, builders, webhooks };
  const failed = Object.entries(components)
    .filter(([, c]) => c.required && c.status !== 'ok')
    .map(([name]) => name);
  return { status: failed.length === 0 ? 'ok' : 'unavailable', checkedAt: new Date().toISOString(), failed, components };
}
