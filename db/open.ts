/** The database a process uses: the configured PostgreSQL, or the embedded one when none is configured. */
import { join } from 'node:path';
import type { Pool } from 'pg';
import { startEmbeddedPostgres } from './embedded.ts';
import { DatabaseUnreachableError } from './errors.ts';
import { assertSchemaCompatible, migrate } from './migrate.ts';
import type { MigrateOptions, MigrateResult } from './migrate.ts';
import { connectTimeoutMs, createPool, redactDatabaseUrl, type PoolOptions } from './pool.ts';

export interface OpenDatabaseOptions {
  /** Configured server (`database.url`); without it the embedded database under `stateDir` is started. */
  url?: string;
  stateDir: string;
  /** Apply pending migrations (true), or only refuse an incompatible schema (false). */
  migrate: boolean;
  log?: MigrateOptions['log'];
  /** Timeouts and size of the pool (db/pool.ts has the defaults). */
  pool?: PoolOptions;
}

export interface Database {
  url: string;
  pool: Pool;
  embedded: boolean;
  /** The embedded database's WebAssembly memory in bytes; undefined for a configured server. */
  wasmMemory?(): Promise<number>;
  /** What `migrate: true` did; undefined when only checked. */
  migration: MigrateResult | undefined;
  /** Ends the pool, then stops the embedded server if one was started. */
  close(): Promise<void>;
}

/** Connects (or starts the embedded database), then migrates or checks the schema. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const embedded =
    options.url === undefined ? await startEmbeddedPostgres({ dataDir: join(options.stateDir, 'pglite') }) : undefined;
  const url = embedded?.url ?? (options.url as string);
  const pool = createPool(url, options.pool);
  const close = async () => {
    await pool.end();
    await embedded?.stop();
  };
  let migration: MigrateResult | undefined;
  try {
    await probe(pool, url, embedded !== undefined, connectTimeoutMs(url, options.pool));
    if (options.migrate) migration = await migrate(pool, options.log ? { log: options.log } : {});
    else await assertSchemaCompatible(pool);
  } catch (error) {
    await close();
    throw error;
  }
  return { url, pool, embedded: embedded !== undefined, migration, close, ...(embedded ? { wasmMemory: () => embedded.wasmMemory() } : {}) };
}

async function probe(pool: Pool, url: string, embedded: boolean, timeoutMs: number): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    const message = error instanceof AggregateError ? error.errors.map((e: Error) => e.message).join('; ') : (error as Error).message;
    // pg says only "connection timeout": name the limit, since the URL's connect_timeout may have set it.
    const reason = /connection timeout|timeout expired/i.test(message) ? `no answer within ${timeoutMs / 1000} s (${message})` : message;
    const hint = embedded
      ? 'the embedded server did not answer'
      : 'start the server, fix database.url / HARMONIA_CI_DATABASE_URL, or unset both to use the embedded database';
    throw new DatabaseUnreachableError(`cannot connect to PostgreSQL at ${redactDatabaseUrl(url)}: ${reason}; ${hint}`, {
      cause: error,
    });
  }
}
