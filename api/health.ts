/**
 * Health checks of the components the API depends on. `/healthz` runs them all;
 * `harmonia-ci dev` runs each one as its component comes up.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { assertSchemaCompatible, readSchemaVersion } from '../db/migrate.ts';
import type { CacheStorage } from './plugins/cache-storage.ts';

export type ComponentStatus = 'ok' | 'failed' | 'not configured';

export interface ComponentHealth {
  status: ComponentStatus;
  /** Whether the instance is unhealthy when this component is not ok. */
  required: boolean;
  /** What was found, or why the check failed and what to look at. */
  message: string;
  latencyMs: number;
}

export interface HealthReport {
  status: 'ok' | 'unavailable';
  checkedAt: string;
  /** Names of the required components that are not ok. */
  failed: string[];
  components: Record<string, ComponentHealth>;
}

export interface HealthDeps {
  pool: Pool;
  temporal: Client;
  cacheStorage: CacheStorage | null;
}

/** Longest a single check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 3000;

/** Node's multi-address connect errors are AggregateErrors with an empty message. */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join('; ');
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return error.message || (typeof code === 'string' ? code : error.name);
  }
  return String(error);
}

async function timed(required: boolean, check: () => Promise<string>): Promise<ComponentHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  const running = check();
  // A check that loses the race may still fail later; that failure is already reported.
  running.catch(() => {});
  try {
    const message = await Promise.race([running, timeout]);
    return { status: 'ok', required, message, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { status: 'failed', required, message: describeError(error), latencyMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** PostgreSQL answers, and its schema is one this program understands. */
export function checkDatabase(pool: Pool): Promise<ComponentHealth> {
  return timed(true, async () => {
    await pool.query('SELECT 1');
    await assertSchemaCompatible(pool);
    return `schema version ${await readSchemaVersion(pool)}`;
  });
}

/** The Temporal frontend answers a cheap call within the deadline. */
export function checkTemporal(client: Client): Promise<ComponentHealth> {
  return timed(true, async () => {
    // The gRPC deadline ends first, so its error (not the generic timeout) is reported.
    const info = await client.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS - 500, () =>
      client.workflowService.getSystemInfo({}),
    );
    return `server ${info.serverVersion || 'unknown version'}, namespace ${client.options.namespace}`;
  });
}

/** The binary cache storage is configured (the API serves it when present). */
export async function checkCacheStorage(storage: CacheStorage | null): Promise<ComponentHealth> {
  if (!storage) return { status: 'not configured', required: false, message: 'no binary cache storage configured', latencyMs: 0 };
  return timed(true, async () => {
    await storage.check();
    return storage.description;
  });
}

/** Builders that reported in during the last minute, from the `nodes` table when it exists. */
export async function checkBuilders(pool: Pool): Promise<ComponentHealth> {
  let tableMissing = false;
  const health = await timed(false, async () => {
    const { rows } = await pool.query<{ present: boolean }>(`SELECT to_regclass('nodes') IS NOT NULL AS present`);
    tableMissing = !rows[0]?.present;
    if (tableMissing) return 'no nodes table (database not migrated)';
    const seen = await pool.query<{ alive: number; draining: number }>(
      `SELECT count(*)::int AS alive, count(*) FILTER (WHERE draining)::int AS draining
         FROM nodes WHERE last_seen_at > now() - interval '1 minute'`,
    );
    const { alive = 0, draining = 0 } = seen.rows[0] ?? {};
    return `${alive} seen in the last minute${draining > 0 ? ` (${draining} draining)` : ''}`;
  });
  return tableMissing ? { ...health, status: 'not configured' } : health;
}

/** Runs every check at once and folds them into one report. */
export async function checkHealth(deps: HealthDeps): Promise<HealthReport> {
  const [database, temporal, cacheStorage, builders] = await Promise.all([
    checkDatabase(deps.pool),
    checkTemporal(deps.temporal),
    checkCacheStorage(deps.cacheStorage),
    checkBuilders(deps.pool),
  ]);
  const components: Record<string, ComponentHealth> = { database, temporal, cacheStorage, builders };
  const failed = Object.entries(components)
    .filter(([, c]) => c.required && c.status !== 'ok')
    .map(([name]) => name);
  return { status: failed.length === 0 ? 'ok' : 'unavailable', checkedAt: new Date().toISOString(), failed, components };
}
