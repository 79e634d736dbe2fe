/**
 * Applying migrations/ to a database, and refusing to run against a schema this
 * program does not understand. Each file runs in its own transaction; a session
 * advisory lock makes concurrent migrators (several replicas starting at once) wait
 * for each other, and they then find the work done.
 */
import type { Pool, PoolClient } from 'pg';
import { MigrationChecksumError, MigrationFailedError, SchemaOutdatedError, SchemaTooNewError } from './errors.ts';
import { loadMigrations } from './migrations.ts';
import type { Migration } from './migrations.ts';

// Advisory lock key: the bytes of "harmonia" read as a 64-bit integer.
const MIGRATION_LOCK = BigInt(`0x${Buffer.from('harmonia').toString('hex')}`).toString();

const CREATE_SCHEMA_MIGRATIONS = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    file       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

export interface MigrateOptions {
  /** Told about each migration as it is applied. */
  log?: { info(object: object, message: string): void };
  /** Defaults to the files under migrations/. */
  migrations?: Migration[];
}

export interface MigrateResult {
  /** Versions applied by this call (empty when the database was up to date). */
  applied: number[];
  /** Schema version after the call. */
  version: number;
}

/** Brings the database up to the newest migration; throws if it is newer or an applied file changed. */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = options.migrations ?? loadMigrations();
  const client = await pool.connect();
  let healthy = false;
  try {
    // Waiting for another migrator, and a migration's DDL, may outlast the pool's statement timeout.
    await client.query('SET statement_timeout = 0');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(CREATE_SCHEMA_MIGRATIONS);
      const applied = await readApplied(client);
      checkApplied(applied, migrations);
      const done: number[] = [];
      for (const migration of migrations.filter((m) => !applied.has(m.version))) {
        await applyOne(client, migration);
        options.log?.info({ version: migration.version, file: migration.file }, 'applied migration');
        done.push(migration.version);
      }
      healthy = true;
      return { applied: done, version: migrations.at(-1)?.version ?? 0 };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {
        healthy = false;
      });
      await client.query('RESET statement_timeout').catch(() => {
        healthy = false;
      });
    }
  } finally {
    // A connection in an unknown state (failed mid-migration) is closed, which also frees the lock.
    client.release(!healthy);
  }
}

/**
 * Throws unless the database is at exactly the schema this program ships:
 * `SchemaTooNewError`, `SchemaOutdatedError` or `MigrationChecksumError`.
 */
export async function assertSchemaCompatible(pool: Pool, migrations = loadMigrations()): Promise<void> {
  const applied = await readAppliedIfPresent(pool);
  checkApplied(applied, migrations);
  const missing = migrations.find((m) => !applied.has(m.version));
  if (missing) throw new SchemaOutdatedError(highest(applied), migrations.at(-1)?.version ?? 0);
}

/** Highest applied migration version, 0 for a database never migrated. */
export async function readSchemaVersion(pool: Pool): Promise<number> {
  return highest(await readAppliedIfPresent(pool));
}

async function applyOne(client: PoolClient, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(migration.sql);
    await client.query('INSERT INTO schema_migrations (version, file, checksum) VALUES ($1, $2, $3)', [
      migration.version,
      migration.file,
      migration.checksum,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw new MigrationFailedError(migration.file, describeSqlError(error, migration.sql), { cause: error });
  }
}

function checkApplied(applied: Map<number, string>, migrations: Migration[]): void {
  const known = migrations.at(-1)?.version ?? 0;
  const newest = highest(applied);
  if (newest > known) throw new SchemaTooNewError(newest, known);
  for (const migration of migrations) {
    const checksum = applied.get(migration.version);
    if (checksum !== undefined && checksum !== migration.checksum) {
      throw new MigrationChecksumError(migration.version, migration.file, checksum, migration.checksum);
    }
  }
}

async function readApplied(client: Pool | PoolClient): Promise<Map<number, string>> {
  const { rows } = await client.query<{ version: number; checksum: string }>(
    'SELECT version, checksum FROM schema_migrations ORDER BY version',
  );
  return new Map(rows.map((row) => [row.version, row.checksum]));
}

async function readAppliedIfPresent(pool: Pool): Promise<Map<number, string>> {
  const { rows } = await pool.query<{ present: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
  return rows[0]?.present ? readApplied(pool) : new Map();
}

function highest(applied: Map<number, string>): number {
  return Math.max(0, ...applied.keys());
}

/** The server's message, with the line of the migration file it points at. */
function describeSqlError(error: unknown, sql: string): string {
  if (!(error instanceof Error)) return String(error);
  const position = Number((error as { position?: string }).position);
  if (!Number.isInteger(position) || position <= 0) return error.message;
  const line = sql.slice(0, position - 1).split('\n').length;
  return `${error.message} (line ${line})`;
}
