/**
 * The API while a component is away: started with no Temporal listening it serves a degraded
 * /healthz and still stores webhook deliveries; with its PostgreSQL (a private cluster) stopped
 * it answers a delivery 503 with Retry-After, naming the database, and takes the redelivery once
 * the database is back; `harmonia-ci api` starts with neither answering.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import { buildApp } from '../../api/app.ts';
import { loadServerConfig } from '../../config/server.ts';
import { migrate } from '../../db/migrate.ts';
import { createPool } from '../../db/pool.ts';
import type { HealthReport } from '../../lib/health.ts';
import { createLogger } from '../../lib/log.ts';
import { findFreePort } from '../../lib/ports.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.ts';
import { eventually, githubPushDelivery } from './support.ts';

const SECRET = 'outage-test-secret';
const REPO = { owner: 'o', name: 'r', id: 42 };

async function addProject(pool: Pool): Promise<void> {
  const repo = await pool.query<{ id: string }>(
    `INSERT INTO repositories (forge, owner, name, clone_url, forge_repository_id) VALUES ('github', 'o', 'r', 'file:///nowhere', 42) RETURNING id`,
  );
  await pool.query(`INSERT INTO projects (repository_id, name) VALUES ($1, 'o/r')`, [repo.rows[0]!.id]);
}

describe('the API while a component is away', () => {
  let dir: string;
  let temporalAddress: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outages-'));
    await writeFile(join(dir, 'secret'), SECRET);
    temporalAddress = `127.0.0.1:${await findFreePort()}`;
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The app as `harmonia-ci api` builds it: its own pool and Temporal connection, from configuration. */
  async function startApp(databaseUrl: string): Promise<FastifyInstance> {
    const config = await loadServerConfig({
      env: {
        DATABASE_URL: databaseUrl,
        TEMPORAL_ADDRESS: temporalAddress,
        HARMONIA_CI_STATE_DIR: join(dir, 'state'),
        HARMONIA_CI_FORGES_GITHUB_TOKEN_FILE: join(dir, 'secret'),
        HARMONIA_CI_FORGES_GITHUB_WEBHOOK_SECRET_FILE: join(dir, 'secret'),
      },
    });
    const app = buildApp({ config, log: createLogger({ level: 'silent' }) });
    await app.ready();
    return app;
  }

  describe('Temporal not listening', () => {
    let db: TestDatabase;
    before(async () => {
      db = await createTestDatabase();
      await addProject(db.pool);
    });
    after(async () => db?.drop());

    it('starts, reports Temporal down on /healthz and stores a webhook delivery', async () => {
      const started = Date.now();
      const app = await startApp(db.url);
      try {
        assert.ok(Date.now() - started < 5_000, `the app started in ${Date.now() - started} ms without waiting for Temporal`);
        const health = await app.inject({ method: 'GET', url: '/healthz' });
        const report = health.json<HealthReport>();
        assert.equal(health.statusCode, 503, health.body);
        assert.deepEqual(report.failed, ['temporal']);
        assert.equal(report.components.database?.status, 'ok');
        assert.match(report.components.temporal?.message ?? '', /webhooks are still accepted/);

        const reply = await app.inject(await githubPushDelivery(SECRET, REPO, { sha: 'a'.repeat(40), deliveryId: 'while-temporal-down' }));
        assert.equal(reply.statusCode, 202, reply.body);
        const { rows } = await db.pool.query(`SELECT status, ref FROM forge_deliveries WHERE delivery_id = 'while-temporal-down'`);
        assert.deepEqual(rows, [{ status: 'pending', ref: 'refs/heads/main' }]);
      } finally {
        await app.close();
      }
    });
  });

  describe('PostgreSQL stopped', () => {
    let postgres: PrivatePostgres;
    before(async () => {
      postgres = await startPrivatePostgres();
      const pool = createPool(postgres.url);
      try {
        await migrate(pool);
        await addProject(pool);
      } finally {
        await pool.end();
      }
    });
    after(async () => postgres?.destroy());

    it('answers 503 with Retry-After naming the database, and stores the redelivery once it is back', async () => {
      const app = await startApp(postgres.url);
      const check = createPool(postgres.url, { onIdleError: () => {} });
      try {
        const first = await app.inject(await githubPushDelivery(SECRET, REPO, { sha: 'b'.repeat(40), deliveryId: 'before-outage' }));
        assert.equal(first.statusCode, 202, first.body);

        await postgres.stop();
        const refused = await app.inject(await githubPushDelivery(SECRET, REPO, { sha: 'c'.repeat(40), deliveryId: 'during-outage' }));
        assert.equal(refused.statusCode, 503, refused.body);
        assert.equal(refused.headers['retry-after'], '60');
        assert.match(refused.json<{ error: string }>().error, /database \(PostgreSQL\) is unreachable/);
        assert.doesNotMatch(refused.body, new RegExp(String(postgres.port)), 'the address stays in the log');
        const health = await app.inject({ method: 'GET', url: '/healthz' });
        assert.ok(health.json<HealthReport>().failed.includes('database'), health.body);

        await postgres.start();
        const redelivered = await app.inject(await githubPushDelivery(SECRET, REPO, { sha: 'c'.repeat(40), deliveryId: 'during-outage' }));
        assert.equal(redelivered.statusCode, 202, redelivered.body);
        const { rows } = await check.query(`SELECT delivery_id FROM forge_deliveries ORDER BY id`);
        assert.deepEqual(
          rows.map((r: { delivery_id: string }) => r.delivery_id),
          ['before-outage', 'during-outage'],
        );
      } finally {
        await app.close();
        await check.end();
      }
    });
  });

  it('`harmonia-ci api` starts with neither PostgreSQL nor Temporal answering and says so on /healthz', async () => {
    const port = await findFreePort();
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs'), 'api', '--port', String(port)], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        DATABASE_URL: `postgresql://postgres@127.0.0.1:${await findFreePort()}/nothing`,
        TEMPORAL_ADDRESS: temporalAddress,
        HARMONIA_CI_STATE_DIR: join(dir, 'api-state'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      const report = await eventually(
        'the API to answer /healthz',
        async () => {
          if (child.exitCode !== null) throw new Error(`harmonia-ci api exited with ${child.exitCode}: ${output}`);
          const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
          return response ? { code: response.status, body: (await response.json()) as HealthReport } : undefined;
        },
        30_000,
      );
      assert.equal(report.code, 503);
      assert.deepEqual(report.body.failed.sort(), ['database', 'temporal']);
      assert.match(output, /cannot connect to PostgreSQL.*starting anyway/);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });
});
