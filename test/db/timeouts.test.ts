/**
 * The pool's timeouts against the real local PostgreSQL: a statement that runs too long is
 * cancelled with a message naming the limit, and a server that does not answer (nothing
 * listening, or a port that accepts and stays silent) fails within the connection timeout
 * with a message naming the URL without its password and what to do.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseUnreachableError } from '../../db/errors.ts';
import { openDatabase } from '../../db/open.ts';
import { connectTimeoutMs, createPool, DEFAULT_CONNECT_TIMEOUT_MS } from '../../db/pool.ts';
import { createEmptyDatabase, type TestDatabase } from '../helpers/database.ts';

describe('statement timeout', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createEmptyDatabase();
  });
  after(() => db.drop());

  it('cancels a statement that runs longer, naming the limit and how to raise it', async () => {
    const pool = createPool(db.url, { statementTimeoutMs: 100 });
    try {
      const started = Date.now();
      await assert.rejects(pool.query('SELECT pg_sleep(5)'), (error: Error & { code?: string }) => {
        assert.equal(error.code, '57014');
        assert.match(error.message, /canceling statement due to statement timeout \(PostgreSQL at .*statement_timeout=<ms> in database\.url/);
        return true;
      });
      assert.ok(Date.now() - started < 2000, 'cancelled at the limit, not after the sleep');
      // A client taken from the pool (transactions) is limited the same way.
      const client = await pool.connect();
      try {
        await assert.rejects(client.query('SELECT pg_sleep(5)'), /statement timeout \(PostgreSQL at /);
      } finally {
        client.release();
      }
      assert.deepEqual((await pool.query<{ ok: number }>('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'the pool stays usable');
    } finally {
      await pool.end();
    }
  });

  it('is on by default, and the URL can override it', async () => {
    const pool = createPool(db.url);
    const overridden = createPool(`${db.url}?statement_timeout=1234`);
    try {
      assert.equal((await pool.query<{ v: string }>("SELECT current_setting('statement_timeout') AS v")).rows[0]?.v, '1min');
      assert.equal((await pool.query<{ v: string }>("SELECT current_setting('idle_in_transaction_session_timeout') AS v")).rows[0]?.v, '1min');
      assert.equal((await overridden.query<{ v: string }>("SELECT current_setting('statement_timeout') AS v")).rows[0]?.v, '1234ms');
    } finally {
      await Promise.all([pool.end(), overridden.end()]);
    }
  });
});

describe('connection timeout', () => {
  let stateDir: string;
  let silent: Server;
  let silentPort: number;
  const sockets: Socket[] = [];

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'harmonia-ci-db-timeouts-'));
    // Accepts connections and never says a word: a hung server or a black-holing firewall.
    silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await rm(stateDir, { recursive: true, force: true });
  });

  it('defaults to 10 s, and libpq’s connect_timeout in the URL wins', () => {
    assert.equal(DEFAULT_CONNECT_TIMEOUT_MS, 10_000);
    assert.equal(connectTimeoutMs('postgresql://h/db'), 10_000);
    assert.equal(connectTimeoutMs('postgresql://h/db', { connectTimeoutMs: 50 }), 50);
    assert.equal(connectTimeoutMs('postgresql://h/db?connect_timeout=3', { connectTimeoutMs: 50 }), 3000);
  });

  it('gives up on a server that accepts and never answers, naming the URL without its password', async () => {
    const url = `postgresql://harmonia:hunter2@127.0.0.1:${silentPort}/ci`;
    const started = Date.now();
    await assert.rejects(openDatabase({ url, stateDir, migrate: false, pool: { connectTimeoutMs: 300 } }), (error: Error) => {
      assert.ok(error instanceof DatabaseUnreachableError, String(error));
      assert.match(error.message, new RegExp(`cannot connect to PostgreSQL at postgresql://harmonia:\\*\\*\\*@127\\.0\\.0\\.1:${silentPort}/ci: no answer within 0\\.3 s`));
      assert.match(error.message, /start the server, fix database\.url/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    assert.ok(Date.now() - started < 3000, `gave up after ${Date.now() - started} ms`);
  });

  it('lets a query wait for a busy pool longer than the connection timeout: busy is not dead', async () => {
    const db = await createEmptyDatabase();
    const pool = createPool(db.url, { max: 1, connectTimeoutMs: 200 });
    try {
      const client = await pool.connect();
      const waiting = pool.query<{ ok: number }>('SELECT 1 AS ok');
      await new Promise((resolve) => setTimeout(resolve, 500));
      client.release();
      assert.deepEqual((await waiting).rows, [{ ok: 1 }]);
    } finally {
      await pool.end();
      await db.drop();
    }
  });

  it('fails at once where nothing listens, with the same advice', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const started = Date.now();
    await assert.rejects(
      openDatabase({ url: `postgresql://harmonia:hunter2@127.0.0.1:${port}/ci`, stateDir, migrate: false, pool: { connectTimeoutMs: 300 } }),
      (error: Error) => {
        assert.ok(error instanceof DatabaseUnreachableError);
        assert.match(error.message, new RegExp(`at postgresql://harmonia:\\*\\*\\*@127\\.0\\.0\\.1:${port}/ci: .*ECONNREFUSED.*; start the server`));
        return true;
      },
    );
    assert.ok(Date.now() - started < 3000);
  });
});
