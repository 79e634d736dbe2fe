/** The migrator against the real local PostgreSQL: fresh apply, no-op rerun, refusals, concurrency. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MigrationChecksumError, MigrationFailedError, SchemaOutdatedError, SchemaTooNewError } from '../../db/errors.ts';
import { assertSchemaCompatible, migrate, readSchemaVersion } from '../../db/migrate.ts';
import { loadMigrations } from '../../db/migrations.ts';
import { createPool } from '../../db/pool.ts';
import { createEmptyDatabase } from '../helpers/database.ts';
import type { TestDatabase } from '../helpers/database.ts';

const migrations = loadMigrations();
const latest = migrations.at(-1)?.version ?? 0;

async function tableNames(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

describe('migrate on a clean database', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createEmptyDatabase();
  });
  after(() => db.drop());

  it('refuses an unmigrated database as outdated', async () => {
    assert.equal(await readSchemaVersion(db.pool), 0);
    await assert.rejects(assertSchemaCompatible(db.pool), (error: unknown) => {
      assert.ok(error instanceof SchemaOutdatedError);
      assert.match(error.message, new RegExp(`at version 0, this harmonia-ci needs version ${latest}; run \`harmonia-ci migrate\``));
      return true;
    });
  });

  it('applies every migration and records version and checksum', async () => {
    const result = await migrate(db.pool);
    assert.deepEqual(result.applied, migrations.map((m) => m.version));
    assert.equal(result.version, latest);
    const { rows } = await db.pool.query<{ version: number; file: string; checksum: string }>(
      'SELECT version, file, checksum FROM schema_migrations ORDER BY version',
    );
    assert.deepEqual(rows, migrations.map((m) => ({ version: m.version, file: m.file, checksum: m.checksum })));
    for (const table of ['derivations', 'derivation_outputs', 'derivation_inputs', 'repositories', 'projects', 'evaluations',
      'eval_attrs', 'build_jobs', 'build_log_tails', 'nodes', 'project_usage', 'schema_migrations']) {
      assert.ok((await tableNames(db)).includes(table), `table ${table} exists`);
    }
    const { rows: unlogged } = await db.pool.query<{ relpersistence: string }>(
      `SELECT relpersistence FROM pg_class WHERE relname = 'build_log_tails'`,
    );
    assert.equal(unlogged[0]?.relpersistence, 'u');
    await assertSchemaCompatible(db.pool);
  });

  it('is a no-op when run again', async () => {
    const earlier = await db.pool.query('SELECT version, applied_at FROM schema_migrations ORDER BY version');
    const result = await migrate(db.pool);
    assert.deepEqual(result.applied, []);
    const afterRun = await db.pool.query('SELECT version, applied_at FROM schema_migrations ORDER BY version');
    assert.deepEqual(afterRun.rows, earlier.rows);
  });

  it('refuses a database migrated by a newer harmonia-ci', async () => {
    await db.pool.query(`INSERT INTO schema_migrations (version, file, checksum) VALUES ($1, '9999_future.sql', 'x')`, [
      latest + 1,
    ]);
    try {
      const expected = `database schema is at version ${latest + 1}, this harmonia-ci understands up to ${latest}; upgrade harmonia-ci`;
      await assert.rejects(assertSchemaCompatible(db.pool), (error: unknown) => {
        assert.ok(error instanceof SchemaTooNewError);
        assert.equal(error.message, expected);
        return true;
      });
      await assert.rejects(migrate(db.pool), { name: 'SchemaTooNewError', message: expected });
    } finally {
      await db.pool.query('DELETE FROM schema_migrations WHERE version = $1', [latest + 1]);
    }
  });

  it('detects a migration file changed after it was applied', async () => {
    const edited = migrations.map((m) => (m.version === 2 ? { ...m, sql: `${m.sql}\n-- edited`, checksum: 'f'.repeat(64) } : m));
    for (const attempt of [() => migrate(db.pool, { migrations: edited }), () => assertSchemaCompatible(db.pool, edited)]) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof MigrationChecksumError);
        assert.equal(error.version, 2);
        assert.match(error.message, /migration 0002_\w+\.sql \(version 2\) was changed after it was applied/);
        return true;
      });
    }
  });
});

describe('migrate under concurrency and failure', () => {
  it('lets several migrators race on one database; each migration is applied exactly once', async () => {
    const db = await createEmptyDatabase();
    const pools = Array.from({ length: 4 }, () => createPool(db.url));
    try {
      const results = await Promise.all(pools.map((pool) => migrate(pool)));
      const applied = results.flatMap((r) => r.applied).sort((a, b) => a - b);
      assert.deepEqual(applied, migrations.map((m) => m.version), 'every version applied by exactly one migrator');
      assert.ok(results.every((r) => r.version === latest));
      const { rows } = await db.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM schema_migrations');
      assert.equal(rows[0]?.count, migrations.length);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
      await db.drop();
    }
  });

  it('rolls back a failing migration entirely and names the file and line', async () => {
    const db = await createEmptyDatabase();
    try {
      const broken = [
        ...migrations.slice(0, 1),
        { version: 2, file: '0002_broken.sql', sql: 'CREATE TABLE half_done (x int);\nSELEC 1;', checksum: 'b'.repeat(64) },
      ];
      await assert.rejects(migrate(db.pool, { migrations: broken }), (error: unknown) => {
        assert.ok(error instanceof MigrationFailedError);
        assert.match(error.message, /migration 0002_broken\.sql failed: syntax error at or near "SELEC" \(line 2\)/);
        return true;
      });
      assert.equal(await readSchemaVersion(db.pool), 1, 'the first migration stays applied');
      const { rows } = await db.pool.query(`SELECT to_regclass('half_done') AS t`);
      assert.equal(rows[0].t, null, 'nothing of the failed migration remains');
    } finally {
      await db.drop();
    }
  });
});
