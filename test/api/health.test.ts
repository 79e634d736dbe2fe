/**
 * /healthz against the real components: a migrated PostgreSQL test database and the
 * runner's Temporal dev server; failures are produced by pointing a dependency at a
 * port where nothing listens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { buildApp } from '../../api/app.ts';
import type { HealthReport } from '../../lib/health.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { ServerConfig } from '../../config/types.ts';
import { createLogger } from '../../lib/log.ts';
import { findFreePort } from '../../lib/ports.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const log = createLogger({ level: 'silent' });

describe('GET /healthz', () => {
  let database: TestDatabase;
  let temporal: Client;
  let config: ServerConfig;

  before(async () => {
    const address = requireEnv('TEMPORAL_ADDRESS');
    database = await createTestDatabase();
    const namespace = process.env.HARMONIA_CI_TEMPORAL_NAMESPACE ?? 'default';
    temporal = await connectTemporal({ address, namespace });
    config = await loadServerConfig({ env: { DATABASE_URL: database.url, TEMPORAL_ADDRESS: address, HARMONIA_CI_TEMPORAL_NAMESPACE: namespace } });
  });

  after(async () => {
    await temporal?.connection.close();
    await database?.drop();
  });

  it('answers 200 with every component when all are up', async () => {
    const app = buildApp({ config, log, deps: { temporal } });
    try {
      const response = await app.inject({ method: 'GET', url: '/healthz' });
      const report = response.json<HealthReport>();
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(report.status, 'ok');
      assert.deepEqual(report.failed, []);
      assert.equal(report.components.database?.status, 'ok');
      assert.match(report.components.database?.message ?? '', /^schema version \d+/);
      assert.equal(report.components.temporal?.status, 'ok');
      assert.match(report.components.temporal?.message ?? '', /^server \d+\.\d+/);
      assert.equal(report.components.cacheStorage?.status, 'not configured');
      assert.equal(report.components.cacheStorage?.required, false);
      assert.ok(report.components.builders, 'builders are reported');
      assert.equal(response.headers['cache-control'], 'no-store');
    } finally {
      await app.close();
    }
  });

  it('answers 503 naming the database when its URL points at a closed port', async () => {
    const closedPort = await findFreePort();
    const broken = { ...config, database: { url: `postgresql://127.0.0.1:${closedPort}/nothing` } };
    const app = buildApp({ config: broken, log, deps: { temporal } });
    try {
      const response = await app.inject({ method: 'GET', url: '/healthz' });
      const report = response.json<HealthReport>();
      assert.equal(response.statusCode, 503, response.body);
      assert.equal(report.status, 'unavailable');
      assert.deepEqual(report.failed, ['database']);
      assert.equal(report.components.database?.status, 'failed');
      assert.match(report.components.database?.message ?? '', new RegExp(`ECONNREFUSED.*${closedPort}`));
      assert.equal(report.components.temporal?.status, 'ok');
    } finally {
      await app.close();
    }
  });

  it('answers 503 naming Temporal when its frontend does not answer', async () => {
    const closedPort = await findFreePort();
    // No retry interceptor: the SDK's default one keeps retrying UNAVAILABLE on timers for
    // ~20 s, past the end of this test, and would then call into the closed channel.
    const connection = Connection.lazy({ address: `127.0.0.1:${closedPort}`, connectTimeout: 1000, interceptors: [] });
    const unreachable = new Client({ connection, namespace: 'default' });
    const app = buildApp({ config, log, deps: { temporal: unreachable } });
    try {
      const response = await app.inject({ method: 'GET', url: '/healthz' });
      const report = response.json<HealthReport>();
      assert.equal(response.statusCode, 503, response.body);
      assert.deepEqual(report.failed, ['temporal']);
      assert.equal(report.components.temporal?.status, 'failed');
      assert.match(report.components.temporal?.message ?? '', /UNAVAILABLE|ECONNREFUSED|Failed to connect/);
      assert.equal(report.components.database?.status, 'ok');
    } finally {
      await app.close();
      await connection.close();
    }
  });

  it('ends the pool it opened on close, and leaves a pool it was given open', async () => {
    const given = new pg.Pool({ connectionString: database.url, max: 1 });
    const withGiven = buildApp({ config, log, deps: { pool: given, temporal } });
    const withOwn = buildApp({ config, log, deps: { temporal } });
    try {
      await Promise.all([withGiven.ready(), withOwn.ready()]);
      const owned = withOwn.db;
      await owned.query('SELECT 1');
      await Promise.all([withGiven.close(), withOwn.close()]);
      assert.equal(owned.ended, true, 'the pool the app opened is ended');
      assert.equal(given.ended, false, 'the pool the caller owns stays open');
      assert.equal((await given.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
      assert.equal((await temporal.workflowService.getSystemInfo({})).serverVersion !== '', true, 'the given Temporal client still works');
    } finally {
      await given.end();
    }
  });
});
