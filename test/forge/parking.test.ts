/**
 * A delivery that keeps failing for a reason other than an outage is parked after MAX_FAILURES
 * with its error, shown on /healthz, /api/deliveries, the dashboard and `harmonia-ci status`, and no longer holds back
 * the later deliveries of its ref; Temporal not answering is waited out and never parks one; a
 * redelivery from the forge replaces a parked delivery.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { buildApp } from '../../api/app.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { ServerConfig } from '../../config/types.ts';
import { createDeliveryDispatcher, MAX_FAILURES } from '../../forges/dispatcher.ts';
import { createForges } from '../../forges/index.ts';
import type { HealthReport } from '../../lib/health.ts';
import { createLogger } from '../../lib/log.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import type { ParkedDelivery } from '../../queries/index.ts';
import type { PushEvent } from '../../workflows/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { githubPushDelivery } from './support.ts';

const SECRET = 'parking-test-secret';
const REPO = { owner: 'o', name: 'r', id: 42 };
const log = createLogger({ level: 'silent' });

/**
 * A stand-in Temporal client: `signalWithStart` records each push, or throws what `fail`
 * returns for it (the dispatcher's only call to Temporal).
 */
function fakeTemporal(fail: (push: PushEvent) => Error | undefined): { client: Client; pushed: PushEvent[] } {
  const pushed: PushEvent[] = [];
  const client = {
    connection: {
      withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
      withAbortSignal: <T>(_signal: AbortSignal, fn: () => Promise<T>) => fn(),
    },
    workflow: {
      async signalWithStart(_workflow: string, options: { signalArgs: [PushEvent] }) {
        const push = options.signalArgs[0];
        const error = fail(push);
        if (error) throw error;
        pushed.push(push);
      },
    },
  } as unknown as Client;
  return { client, pushed };
}

function grpcError(code: number, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('parked webhook deliveries', () => {
  let db: TestDatabase;
  let dir: string;
  let config: ServerConfig;
  let projectId: string;

  before(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'parking-'));
    await writeFile(join(dir, 'secret'), SECRET);
    config = await loadServerConfig({
      env: {
        HARMONIA_CI_STATE_DIR: join(dir, 'state'),
        HARMONIA_CI_FORGES_GITHUB_TOKEN_FILE: join(dir, 'secret'),
        HARMONIA_CI_FORGES_GITHUB_WEBHOOK_SECRET_FILE: join(dir, 'secret'),
      },
    });
    const repo = await db.pool.query<{ id: string }>(
      `INSERT INTO repositories (forge, owner, name, clone_url, forge_repository_id) VALUES ('github', 'o', 'r', 'file:///nowhere', 42) RETURNING id`,
    );
    const project = await db.pool.query<{ id: string }>(`INSERT INTO projects (repository_id, name) VALUES ($1, 'o/r') RETURNING id`, [repo.rows[0]!.id]);
    projectId = String(project.rows[0]!.id);
  });

  after(async () => {
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => db.pool.query('DELETE FROM forge_deliveries'));

  async function store(deliveryId: string, sha: string): Promise<void> {
    await db.pool.query(
      `INSERT INTO forge_deliveries (forge, delivery_id, event, project_id, ref, intent) VALUES ('github', $1, 'push', $2, 'refs/heads/main', $3)`,
      [deliveryId, projectId, { kind: 'push', sha, treeHash: 'e'.repeat(40) }],
    );
  }

  async function delivery(deliveryId: string) {
    const { rows } = await db.pool.query<{ status: string; failures: number; attempts: number; outcome: string | null }>(
      `SELECT status, failures, attempts, outcome FROM forge_deliveries WHERE delivery_id = $1`,
      [deliveryId],
    );
    return rows[0];
  }

  /** Runs dispatcher passes with every delivery due at once, skipping the backoff. */
  async function passes(dispatcher: ReturnType<typeof createDeliveryDispatcher>, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      await db.pool.query(`UPDATE forge_deliveries SET next_attempt_at = now() WHERE status = 'pending'`);
      await dispatcher.runOnce();
    }
  }

  it('parks a delivery that keeps failing, and lets the ref\'s next delivery through', async () => {
    const bad = 'a'.repeat(40);
    const good = 'b'.repeat(40);
    const temporal = fakeTemporal((push) => (push.sha === bad ? new TypeError('refWorkflow rejected the push: boom') : undefined));
    const dispatcher = createDeliveryDispatcher({ pool: db.pool, client: temporal.client, forges: createForges(config.forges), log });
    await store('bad', bad);
    await store('good', good);

    await passes(dispatcher, 1);
    assert.deepEqual(await delivery('bad'), { status: 'pending', failures: 1, attempts: 1, outcome: 'refWorkflow rejected the push: boom' });
    assert.equal((await delivery('good'))?.attempts, 0, 'the ref\'s later delivery waits behind the failing one');
    assert.equal(temporal.pushed.length, 0);

    await passes(dispatcher, MAX_FAILURES - 1);
    assert.deepEqual(await delivery('bad'), { status: 'parked', failures: MAX_FAILURES, attempts: MAX_FAILURES, outcome: 'refWorkflow rejected the push: boom' });
    await passes(dispatcher, 1);
    assert.equal((await delivery('good'))?.status, 'dispatched');
    assert.deepEqual(
      temporal.pushed.map((p) => p.sha),
      [good],
    );
    await dispatcher.stop();

    const app = buildApp({ config, log, deps: { pool: db.pool, temporal: fakeTemporal(() => undefined).client } });
    try {
      const listed = await app.inject({ method: 'GET', url: '/api/deliveries?status=parked' });
      assert.equal(listed.statusCode, 200, listed.body);
      const [parked, ...rest] = listed.json<ParkedDelivery[]>();
      assert.deepEqual(rest, []);
      assert.equal(parked?.deliveryId, 'bad');
      assert.equal(parked?.project, 'o/r');
      assert.equal(parked?.ref, 'refs/heads/main');
      assert.equal(parked?.failures, MAX_FAILURES);
      assert.equal(parked?.error, 'refWorkflow rejected the push: boom');

      const landing = await app.inject({ method: 'GET', url: '/ci/' });
      assert.match(landing.body, /Parked webhook deliveries/);
      assert.match(landing.body, /refWorkflow rejected the push: boom/);

      const health = await app.inject({ method: 'GET', url: '/healthz' });
      const webhooks = health.json<HealthReport>().components.webhooks;
      assert.equal(webhooks?.status, 'failed');
      assert.equal(webhooks?.required, false);
      assert.match(webhooks?.message ?? '', /^1 delivery parked/);
    } finally {
      await app.close();
    }

    const status = await promisify(execFile)(process.execPath, [join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs'), 'status'], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, DATABASE_URL: db.url, HARMONIA_CI_STATE_DIR: join(dir, 'state') },
    });
    assert.match(status.stdout, /parked webhook deliveries \(1\)/);
    assert.match(status.stdout, /o\/r +refs\/heads\/main +github push bad .*refWorkflow rejected the push: boom/);
  });

  it('replaces a parked delivery when the forge redelivers it', async () => {
    const sha = 'c'.repeat(40);
    await store('again', sha);
    await db.pool.query(`UPDATE forge_deliveries SET status = 'parked', failures = $1, outcome = 'boom', finished_at = now()`, [MAX_FAILURES]);
    const app = buildApp({ config, log, deps: { pool: db.pool, temporal: fakeTemporal(() => undefined).client } });
    try {
      const reply = await app.inject(await githubPushDelivery(SECRET, REPO, { sha, deliveryId: 'again' }));
      assert.equal(reply.statusCode, 202, reply.body);
      assert.deepEqual(reply.json(), { status: 'accepted' });
      const duplicate = await app.inject(await githubPushDelivery(SECRET, REPO, { sha, deliveryId: 'again' }));
      assert.deepEqual(duplicate.json(), { status: 'duplicate' }, 'a delivery that is not parked is stored once');
      assert.notEqual((await delivery('again'))?.status, 'parked');
    } finally {
      await app.close();
    }
  });

  it('waits out Temporal not answering without counting it against the delivery', async () => {
    let down = true;
    const temporal = fakeTemporal(() => (down ? grpcError(14, '14 UNAVAILABLE: No connection established') : undefined));
    const dispatcher = createDeliveryDispatcher({ pool: db.pool, client: temporal.client, forges: createForges(config.forges), log });
    await store('first', 'd'.repeat(40));
    await store('second', 'f'.repeat(40));

    await passes(dispatcher, MAX_FAILURES + 2);
    const waiting = await delivery('first');
    assert.equal(waiting?.status, 'pending');
    assert.equal(waiting?.failures, 0);
    assert.match(waiting?.outcome ?? '', /UNAVAILABLE/);
    assert.equal(waiting?.attempts, MAX_FAILURES + 2);

    down = false;
    await passes(dispatcher, 2);
    assert.deepEqual([(await delivery('first'))?.status, (await delivery('second'))?.status], ['dispatched', 'dispatched']);
    assert.deepEqual(
      temporal.pushed.map((p) => p.sha),
      ['d'.repeat(40), 'f'.repeat(40)],
    );
    await dispatcher.stop();
  });
});
