/** PostgreSQL connection pools. */
import { userInfo } from 'node:os';
import pg from 'pg';
import type { ClientConfig, Pool, PoolConfig } from 'pg';

const INT8_OID = 20;

/** How long a connection attempt may take, TCP and authentication together. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** The longest one statement may run: every query here is small, so a longer one is stuck (a lock, a bad plan). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 60_000;
/** A transaction left idle this long holds locks for nobody: the server ends its session. */
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
// SQLSTATE query_canceled: what PostgreSQL answers when statement_timeout fires.
const QUERY_CANCELED = '57014';

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
  /** Give up connecting after this long (default DEFAULT_CONNECT_TIMEOUT_MS; the URL's `connect_timeout`, in seconds, wins). */
  connectTimeoutMs?: number;
  /** Server-side limit per statement (default DEFAULT_STATEMENT_TIMEOUT_MS; the URL's `statement_timeout` wins; 0 = none). */
  statementTimeoutMs?: number;
  /** Server-side limit on an idle open transaction (default DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS; the URL's parameter wins). */
  idleInTransactionTimeoutMs?: number;
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
    // Not the pool's connectionTimeoutMillis: pg-pool would also apply it to waiting for a free
    // connection, and a busy pool (the embedded one has a single connection) is not a dead server.
    Client: timedClient(redactDatabaseUrl(databaseUrl), connectTimeoutMs(databaseUrl, options)),
    // The embedded PGlite is one single-threaded session that cannot interrupt a statement: no server-side limits there.
    ...(single
      ? {}
      : {
          statement_timeout: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
          idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
        }),
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

/** The connection timeout a pool uses: libpq's `connect_timeout` (seconds) in the URL, which pg itself ignores, else the option, else the default. */
export function connectTimeoutMs(databaseUrl: string, options: PoolOptions = {}): number {
  let seconds = Number.NaN;
  try {
    seconds = Number(new URL(databaseUrl).searchParams.get('connect_timeout') ?? Number.NaN);
  } catch {
    // Not a URL: the option or the default applies.
  }
  if (Number.isFinite(seconds) && seconds > 0) return seconds * 1000;
  return options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
}

type QueryCallback = (error: Error | null, result?: unknown) => void;

/**
 * A pg Client that gives up connecting after `connectMs`, and whose statement-timeout errors say
 * which server, which limit and how to change it (PostgreSQL only says "canceling statement due
 * to statement timeout").
 */
function timedClient(where: string, connectMs: number): typeof pg.Client {
  const explain = (error: unknown): unknown => {
    const failure = error as { code?: string; message?: string } | null;
    if (failure?.code === QUERY_CANCELED && /statement timeout/.test(failure.message ?? '')) {
      failure.message =
        `${failure.message} (PostgreSQL at ${where}: a statement ran longer than statement_timeout; ` +
        'raise it with ?statement_timeout=<ms> in database.url if such a statement is expected)';
    }
    return error;
  };
  return class TimedClient extends pg.Client {
    constructor(config?: ClientConfig) {
      super({ ...config, connectionTimeoutMillis: connectMs });
    }

    // pg's query has many overloads; both the promise and the callback form (used by Pool.query) are covered.
    override query(...args: unknown[]): never {
      const last = args.at(-1);
      if (typeof last === 'function') {
        args[args.length - 1] = ((error, result) => (last as QueryCallback)(error ? (explain(error) as Error) : null, result)) satisfies QueryCallback;
      }
      const result = (super.query as (...a: unknown[]) => unknown)(...args);
      return (result instanceof Promise ? result.catch((error: unknown) => Promise.reject(explain(error))) : result) as never;
    }
  };
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
