/**
 * The embedded PostgreSQL (PGlite behind its socket server), driven through real
 * `pg` connections. First the finding that decides its pool size, then the server
 * harmonia-ci starts: migrations, persistence, single connection, directory lock.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { EMBEDDED_POOL_SIZE, startEmbeddedPostgres } from '../../db/embedded.ts';
import { EmbeddedDatabaseError } from '../../db/errors.ts';
import { assertSchemaCompatible, migrate, readSchemaVersion } from '../../db/migrate.ts';
import { loadMigrations } from '../../db/migrations.ts';
import { createPool } from '../../db/pool.ts';

describe('PGlite behind a multi-connection socket server', () => {
  let db: PGlite;
  let server: PGLiteSocketServer;
  let a: pg.Client;
  let b: pg.Client;

  before(async () => {
    db = await PGlite.create();
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 2 });
    await server.start();
    const url = `postgresql://postgres@${server.getServerConn()}/postgres`;
    [a, b] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
    await Promise.all([a.connect(), b.connect()]);
    await a.query('CREATE TABLE counter (id int PRIMARY KEY, value int NOT NULL); INSERT INTO counter VALUES (1, 0)');
  });
  after(async () => {
    await Promise.all([a.end(), b.end()]);
    await server.stop();
    await db.close();
  });

  it('serialises transactions: the other connection waits instead of reading uncommitted data', async () => {
    await a.query('BEGIN');
    await a.query('UPDATE counter SET value = 1 WHERE id = 1');
    let finished = false;
    const read = b.query<{ value: number }>('SELECT value FROM counter WHERE id = 1').then((r) => {
      finished = true;
      return r.rows[0]?.value;
    });
    await sleep(150);
    assert.equal(finished, false, 'B is held back while A is inside its transaction');
    await a.query('ROLLBACK');
    assert.equal(await read, 0, 'B sees the rolled-back value, not the uncommitted one');

    await a.query('BEGIN');
    await a.query('UPDATE counter SET value = 2 WHERE id = 1');
    const write = b.query('UPDATE counter SET value = value + 10 WHERE id = 1');
    await a.query('COMMIT');
    await write;
    const { rows } = await a.query<{ value: number }>('SELECT value FROM counter WHERE id = 1');
    assert.equal(rows[0]?.value, 12, 'both committed changes survive, applied one after the other');
  });

  it('shares ONE session between connections: locks and settings leak, so the embedded pool has one connection', async () => {
    const lockA = await a.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(42) AS locked');
    const lockB = await b.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(42) AS locked');
    assert.equal(lockA.rows[0]?.locked, true);
    // On a real server B would be refused (false): the two "connections" are the same backend.
    assert.equal(lockB.rows[0]?.locked, true, 'a session lock held by A is also granted to B');
    await a.query(`SET statement_timeout = '1234ms'`);
    const seen = await b.query<{ statement_timeout: string }>('SHOW statement_timeout');
    assert.equal(seen.rows[0]?.statement_timeout, '1234ms', 'a SET on A changes B');
    assert.equal(EMBEDDED_POOL_SIZE, 1);
  });
});

describe('startEmbeddedPostgres', () => {
  let stateDir: string;
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'harmonia-embedded-'));
  });
  after(() => rm(stateDir, { recursive: true, force: true }));

  it('runs the migrations, keeps data across restarts, takes one connection and locks its directory', async () => {
    const dataDir = join(stateDir, 'pglite');
    const first = await startEmbeddedPostgres({ dataDir });
    const pool = createPool(first.url);
    try {
      assert.equal(first.poolSize, 1);
      assert.equal(pool.options.max, 1, 'createPool clamps a pool to the embedded server to one connection');
      const result = await migrate(pool);
      assert.equal(result.version, loadMigrations().at(-1)?.version);
      await assertSchemaCompatible(pool);

      // Concurrent work through the pool of one: transactions queue for the connection and stay intact.
      await pool.query(`INSERT INTO nodes (name, systems, max_jobs) VALUES ('builder-1', '{x86_64-linux}', 4)`);
      const tx = await pool.connect();
      await tx.query('BEGIN');
      await tx.query(`UPDATE nodes SET max_jobs = 99 WHERE name = 'builder-1'`);
      const other = pool.query<{ max_jobs: number }>(`SELECT max_jobs FROM nodes WHERE name = 'builder-1'`);
      await tx.query('ROLLBACK');
      tx.release();
      assert.equal((await other).rows[0]?.max_jobs, 4);

      const extra = new pg.Client({ connectionString: first.url });
      extra.on('error', () => {});
      await assert.rejects(extra.connect().then(() => extra.query('SELECT 1')), 'a second connection is refused');

      await assert.rejects(startEmbeddedPostgres({ dataDir }), (error: unknown) => {
        assert.ok(error instanceof EmbeddedDatabaseError);
        assert.match(error.message, new RegExp(`in use by process ${process.pid}`));
        return true;
      });
    } finally {
      await pool.end();
      await first.stop();
    }

    const second = await startEmbeddedPostgres({ dataDir });
    const again = createPool(second.url);
    try {
      assert.deepEqual((await migrate(again)).applied, [], 'the persisted schema needs nothing');
      assert.equal(await readSchemaVersion(again), loadMigrations().at(-1)?.version);
      const { rows } = await again.query<{ max_jobs: number }>(`SELECT max_jobs FROM nodes WHERE name = 'builder-1'`);
      assert.equal(rows[0]?.max_jobs, 4, 'rows written before the restart are still there');
    } finally {
      await again.end();
      await second.stop();
    }
  });
});
