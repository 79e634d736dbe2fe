/** PostgreSQL connection pools. */
import { userInfo } from 'node:os';
import pg from 'pg';
import type { ClientConfig, Pool, PoolConfig } from 'pg';

const INT8_OID = 20;

// Servers in this process that take a single connection (the embedded PGlite):
// every pool to them gets max 1 and keeps its connection, whatever the caller asked.
const singleConnectionUrls = new Set<string>();

/** Declares that the server at `url` serves one connection; returns the undo. */
export function registerSingleConnectionServer(url: string): () => void {
  singleConnectionUrls.add(url);
  return () => singleConnectionUrls.delete(url);
}

export interface PoolOptions {
  /** Most connections open at once (pg's default is 10; the embedded database needs 1). */
  max?: number;
  /** Close connections idle this long (pg's default 10 s); 0 keeps them open. */
  idleTimeoutMillis?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Told about errors of idle connections (the server restarted); defaults to a process warning. */
  onIdleError?: (error: Error) => void;
}

/**
 * A pg pool for `databaseUrl` (one connection for the embedded server). bigint columns (ids, sizes) come back as JS numbers:
 * every value this schema stores fits below 2^53, and a larger one throws rather
 * than silently losing precision.
 */
export function createPool(databaseUrl: string, options: PoolOptions = {}): Pool {
  const single = singleConnectionUrls.has(databaseUrl);
  const max = single ? 1 : options.max;
  const idleTimeoutMillis = single ? 0 : options.idleTimeoutMillis;
  const config: PoolConfig = {
    ...connectionConfig(databaseUrl),
    application_name: options.applicationName ?? 'harmonia-ci',
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
    ...(max === undefined ? {} : { max }),
    ...(idleTimeoutMillis === undefined ? {} : { idleTimeoutMillis }),
  };
  const pool = new pg.Pool(config);
  // Without a listener an idle connection's error would crash the process; pg drops the connection itself.
  pool.on('error', options.onIdleError ?? ((error) => process.emitWarning(`idle PostgreSQL connection failed: ${error.message}`)));
  return pool;
}

/**
 * Client settings for a URL. Like libpq (psql), a URL without a user name means
 * `$PGUSER`, else the operating-system user; pg alone would send no user when
 * `$USER` is unset (containers, service managers) and the server refuses that.
 */
export function connectionConfig(databaseUrl: string): ClientConfig {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    // Not a URL (a key=value string): pg parses it and reports what is wrong.
    return { connectionString: databaseUrl };
  }
  // pg lets the connection string's (empty) user win over a separate `user` option.
  if (url.username === '') url.username = encodeURIComponent(process.env.PGUSER || process.env.USER || userInfo().username);
  return { connectionString: url.toString() };
}

function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} does not fit in a JavaScript number`);
  return value;
}

/** The URL with its password replaced, for messages and logs. */
export function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<unparsable database URL>';
  }
}
