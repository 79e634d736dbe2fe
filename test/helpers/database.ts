/**
 * Cheap isolated databases for tests: a template database migrated once per
 * set of migration files (its name carries their hash), cloned per test file
 * with CREATE DATABASE … TEMPLATE, which takes milliseconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Pool } from 'pg';
import { migrate } from '../../db/migrate.ts';
import { loadMigrations } from '../../db/migrations.ts';
import { connectionConfig, createPool } from '../../db/pool.ts';

const DEFAULT_URL = 'postgresql://127.0.0.1:5432/postgres';
const TEMPLATE_PREFIX = 'harmonia_tpl_';
// Advisory lock key serialising template creation across test processes.
const TEMPLATE_LOCK = '7424391836123';

export interface TestDatabase {
  url: string;
  pool: Pool;
  /** Ends the pool and drops the database. */
  drop(): Promise<void>;
}

/** The server under test: `$DATABASE_URL`, else the local PostgreSQL. */
export function testServerUrl(): string {
  return process.env.DATABASE_URL || DEFAULT_URL;
}

/** `url` pointing at another database on the same server. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs `fn` with a connection to the server's maintenance database; fails loudly if there is none. */
export async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(connectionConfig(testServerUrl()));
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `cannot reach PostgreSQL at ${testServerUrl()} (DATABASE_URL): ${(error as Error).message}; run through npm test`,
      { cause: error },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database (not migrated), for tests of the migrator itself. */
export async function createEmptyDatabase(): Promise<TestDatabase> {
  const name = uniqueName();
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  return handle(name);
}

/** A fresh database with the current schema, cloned from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = await ensureTemplate();
  const name = uniqueName();
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  return handle(name);
}

function handle(name: string): TestDatabase {
  const url = databaseUrl(testServerUrl(), name);
  // pool.end() resolves before the server has seen every connection close; the forced
  // DROP below then terminates those, which is expected here and not worth a warning.
  const pool = createPool(url, { onIdleError: () => {} });
  let dropped: Promise<void> | undefined;
  return {
    url,
    pool,
    drop() {
      dropped ??= (async () => {
        await pool.end();
        await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      })();
      return dropped;
    },
  };
}

function uniqueName(): string {
  return `harmonia_test_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Name of the template for the current migrations, creating and migrating it if missing. */
async function ensureTemplate(): Promise<string> {
  const hash = createHash('sha256');
  for (const migration of loadMigrations()) hash.update(`${migration.file}\0${migration.checksum}\0`);
  const template = `${TEMPLATE_PREFIX}${hash.digest('hex').slice(0, 16)}`;
  await withAdminClient(async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    try {
      await dropStaleDatabases(client, template);
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (rowCount) return;
      // Built under another name and renamed when complete, so a crash never leaves a half-migrated template.
      const building = `${template}_building`;
      await client.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${building}`);
      const pool = createPool(databaseUrl(testServerUrl(), building));
      try {
        await migrate(pool);
      } finally {
        await pool.end();
      }
      await client.query(`ALTER DATABASE ${building} RENAME TO ${template}`);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
    }
  });
  return template;
}

/**
 * Templates of earlier migration sets, and databases of test processes that died
 * before dropping theirs. One still in use is left for next time.
 */
async function dropStaleDatabases(client: pg.Client, currentTemplate: string): Promise<void> {
  const { rows } = await client.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname LIKE 'harmonia\\_tpl\\_%' OR datname LIKE 'harmonia\\_test\\_%'`,
  );
  for (const { datname } of rows) {
    const pid = /^harmonia_test_(\d+)_/.exec(datname)?.[1];
    const stale = pid === undefined ? datname !== currentTemplate : !isAlive(Number(pid));
    if (stale) await client.query(`DROP DATABASE IF EXISTS ${datname}`).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
