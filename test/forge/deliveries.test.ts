/**
 * Accepted webhook deliveries survive a Temporal outage: the API stores the delivery and answers
 * 202 while Temporal is unreachable, the dispatcher keeps it pending with the error, and once
 * Temporal answers the same delivery becomes the push signal on the ref workflow. A dispatcher
 * keeps nothing per dispatched delivery (a burst of deliveries showed one listener each).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { buildApp } from '../../api/app.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createDeliveryDispatcher } from '../../forges/dispatcher.ts';
import { createForges } from '../../forges/index.ts';
import { recordDelivery } from '../../forges/store.ts';
import { createLogger } from '../../lib/log.ts';
import { findFreePort } from '../../lib/ports.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { pushSignal } from '../../workflows/definitions.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { eventually, githubExample, githubSignature } from './support.ts';

const SECRET = 'delivery-test-secret';

describe('webhook deliveries while Temporal is down', () => {
  let db: TestDatabase;
  let dir: string;
  let connection: Connection;
  let client: Client;

  before(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'deliveries-'));
    await writeFile(join(dir, 'secret'), SECRET);
    connection = await Connection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
    const namespace = `test-${randomUUID().slice(0, 8)}`;
    await ensureNamespace(connection, namespace);
    await ensureSearchAttributes(connection, namespace);
    client = new Client({ connection, namespace });
    const repo = await db.pool.query<{ id: string }>(
      `INSERT INTO repositories (forge, owner, name, clone_url, forge_repository_id) VALUES ('github', 'o', 'r', 'file:///nowhere', 42) RETURNING id`,
    );
    await db.pool.query(`INSERT INTO projects (repository_id, name) VALUES ($1, 'o/r')`, [repo.rows[0]!.id]);
  });

  after(async () => {
    await connection?.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps the delivery and signals the ref workflow once Temporal answers', async () => {
    const config = await loadServerConfig({
      env: {
        HARMONIA_CI_STATE_DIR: join(dir, 'state'),
        HARMONIA_CI_FORGES_GITHUB_TOKEN_FILE: join(dir, 'secret'),
        HARMONIA_CI_FORGES_GITHUB_WEBHOOK_SECRET_FILE: join(dir, 'secret'),
      },
    });
    // No gRPC retries: the dispatcher's first attempt fails at once instead of after the client's retry budget.
    const unreachable = Connection.lazy({ address: `127.0.0.1:${await findFreePort()}`, connectTimeout: 500, interceptors: [] });
    const down = new Client({ connection: unreachable, namespace: 'default' });
    const app = buildApp({ config, log: createLogger({ level: 'silent' }), deps: { pool: db.pool, temporal: down } });
    await app.ready();
    const sha = 'd'.repeat(40);
    const payload = await githubExample('push', undefined, (e) => e.head_commit !== null);
    Object.assign(payload, { ref: 'refs/heads/main', after: sha });
    Object.assign(payload.head_commit as object, { id: sha, tree_id: 'e'.repeat(40) });
    Object.assign(payload.repository as object, { id: 42, name: 'r' });
    Object.assign((payload.repository as { owner: object }).owner, { login: 'o' });
    const body = JSON.stringify(payload);
    try {
      const reply = await app.inject({
        method: 'POST',
        url: '/webhook/github',
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'd-1', 'x-hub-signature-256': githubSignature(SECRET, body) },
        payload: body,
      });
      assert.equal(reply.statusCode, 202, reply.body);
      const failed = await eventually('a failed dispatch attempt', async () => {
        const { rows } = await db.pool.query<{ status: string; attempts: number; outcome: string | null }>(
          `SELECT status, attempts, outcome FROM forge_deliveries WHERE delivery_id = 'd-1'`,
        );
        return rows[0] && rows[0].attempts > 0 && rows[0].outcome ? rows[0] : undefined;
      });
      assert.equal(failed.status, 'pending');
    } finally {
      await app.close();
      await down.connection.close().catch(() => undefined);
    }

    await db.pool.query(`UPDATE forge_deliveries SET next_attempt_at = now()`);
    const dispatcher = createDeliveryDispatcher({ pool: db.pool, client, forges: createForges(config.forges), log: createLogger({ level: 'silent' }) });
    assert.equal(await dispatcher.runOnce(), 1);
    const { rows } = await db.pool.query(`SELECT status FROM forge_deliveries WHERE delivery_id = 'd-1'`);
    assert.deepEqual(rows, [{ status: 'dispatched' }]);
    const history = await client.workflow.getHandle('ref/o/r/refs/heads/main').fetchHistory();
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === pushSignal.name);
    assert.equal(signals.length, 1);
    await client.workflow.getHandle('ref/o/r/refs/heads/main').terminate('test over');
  });

  it('leaves nothing behind on its stop signal for each delivery it dispatches', async () => {
    const { rows: projects } = await db.pool.query<{ id: string }>(`SELECT id FROM projects WHERE name = 'o/r'`);
    // Each gRPC call Temporal's client makes under an abort signal adds a listener to it: a signal
    // that lives as long as the dispatcher would keep one per delivery dispatched.
    const refs = Array.from({ length: 12 }, (_, i) => `refs/heads/listener-${i}`);
    for (const [i, ref] of refs.entries()) {
      const sha = String(i).padStart(2, '0').repeat(20);
      await recordDelivery(db.pool, { forge: 'github', deliveryId: `l-${i}`, event: 'push', projectId: String(projects[0]!.id), ref, intent: { kind: 'push', ref, sha, treeHash: 'e'.repeat(40) } });
    }
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const config = await loadServerConfig({
      env: { HARMONIA_CI_STATE_DIR: join(dir, 'state'), HARMONIA_CI_FORGES_GITHUB_TOKEN_FILE: join(dir, 'secret') },
    });
    const dispatcher = createDeliveryDispatcher({ pool: db.pool, client, forges: createForges(config.forges), log: createLogger({ level: 'silent' }) });
    try {
      assert.equal(await dispatcher.runOnce(), refs.length);
      await new Promise((resolve) => setImmediate(resolve));
      const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM forge_deliveries WHERE delivery_id LIKE 'l-%' AND status = 'dispatched'`);
      assert.equal(Number(rows[0]!.n), refs.length);
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
    } finally {
      process.off('warning', onWarning);
      await dispatcher.stop();
      for (const ref of refs) await client.workflow.getHandle(`ref/o/r/${ref}`).terminate('test over').catch(() => undefined);
    }
  });
});
