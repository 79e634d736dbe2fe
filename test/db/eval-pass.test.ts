/**
 * One pass of an eval's wavefront (activities/coordinator/scheduler.ts, `advanceEval`) on a real
 * PostgreSQL and Temporal server: cancelled builds come back, failures propagate, ready builds
 * start up to the window in priority order, and the progress it returns is the eval's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { advanceEval } from '../../activities/coordinator/scheduler.ts';
import { countProgress } from '../../queries/progress.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
let connection: Connection;
let client: Client;
const started: string[] = [];

before(async () => {
  db = await createTestDatabase();
  connection = await Connection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
  client = new Client({ connection, namespace: process.env.HARMONIA_CI_TEMPORAL_NAMESPACE ?? 'default' });
});
after(async () => {
  // No worker runs them: they only had to exist.
  for (const workflowId of started) await client.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
  await connection?.close();
  await db?.drop();
});

describe('an eval pass', () => {
  it('revives cancelled builds, propagates failures, starts ready builds up to the window by priority, and counts progress', async () => {
    const pool = db.pool;
    const repo = await pool.query<{ id: string }>(
      `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'o', 'pass', 'https://github.com/o/pass.git') RETURNING id`,
    );
    const project = await pool.query<{ id: string }>('INSERT INTO projects (repository_id, name) VALUES ($1, $2) RETURNING id', [repo.rows[0]!.id, 'o/pass']);
    const evaluation = await pool.query<{ id: string }>(
      `INSERT INTO evaluations (project_id, commit_sha, ref, status) VALUES ($1, $2, 'refs/heads/main', 'running') RETURNING id`,
      [project.rows[0]!.id, randomBytes(20).toString('hex')],
    );
    const evalId = String(evaluation.rows[0]!.id);
    const tag = randomBytes(8).toString('hex');
    const build = async (name: string, options: { status?: string; subscribed?: boolean; inputs?: string[]; priority?: number } = {}): Promise<string> => {
      const drvPath = `/nix/store/${randomBytes(16).toString('hex')}-${tag}-${name}.drv`;
      await pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, $2, 'x86_64-linux')`, [drvPath, `${tag}-${name}`]);
      for (const input of options.inputs ?? []) {
        await pool.query(`INSERT INTO derivation_inputs (drv_path, input_drv_path, output_names) VALUES ($1, $2, '{out}')`, [drvPath, input]);
      }
      const { rows } = await pool.query<{ id: string }>(
        'INSERT INTO build_jobs (drv_path, status, workflow_id, priority) VALUES ($1, $2, $3, $4) RETURNING id',
        [drvPath, options.status ?? 'pending', options.subscribed ? `build/held-${name}-${tag}` : null, options.priority ?? 0],
      );
      await pool.query(
        `INSERT INTO evaluation_builds (eval_id, build_id, subscribed_at) VALUES ($1, $2, ${options.subscribed ? 'now()' : 'NULL'})`,
        [evalId, rows[0]!.id],
      );
      return drvPath;
    };
    // Three open already (subscribed); a window of three leaves no room.
    const held = await build('held1', { subscribed: true });
    await build('held2', { subscribed: true, status: 'building' });
    await build('held3', { subscribed: true });
    const ready = await build('ready');
    const urgent = await build('urgent', { priority: 1000 });
    await build('waiting', { inputs: [held] });
    const broken = await build('broken', { status: 'failed' });
    const afterBroken = await build('after-broken', { inputs: [broken] });
    const afterThat = await build('after-that', { inputs: [afterBroken] });
    const cancelled = await build('cancelled', { status: 'cancelled' });
    await pool.query('UPDATE evaluation_builds SET subscribed_at = now() WHERE build_id = (SELECT id FROM build_jobs WHERE drv_path = $1)', [cancelled]);

    const statusOf = async (drvPath: string) =>
      (await pool.query<{ status: string; dep_failed_drv_path: string | null; workflow_id: string | null }>('SELECT status, dep_failed_drv_path, workflow_id FROM build_jobs WHERE drv_path = $1', [drvPath])).rows[0]!;

    const full = await advanceEval(pool, client, { evalId, evalWorkflowId: `eval/${evalId}`, window: 3 });
    assert.equal((await statusOf(cancelled)).status, 'pending', 'the cancelled build is wanted again');
    assert.deepEqual(await statusOf(afterThat), { status: 'dep-failed', dep_failed_drv_path: broken, workflow_id: null }, 'failure passes down the chain, naming the root cause');
    assert.equal((await statusOf(afterBroken)).dep_failed_drv_path, broken);
    assert.equal((await statusOf(ready)).workflow_id, null, 'a full window starts nothing');
    assert.deepEqual(full, await countProgress(pool, evalId), 'the pass returns what the eval counts');
    assert.deepEqual(
      { pending: full.pending, building: full.building, failed: full.failed, depFailed: full.depFailed, done: full.done },
      { pending: 6, building: 1, failed: 1, depFailed: 2, done: false },
    );

    const roomForTwo = await advanceEval(pool, client, { evalId, evalWorkflowId: `eval/${evalId}`, window: 5 });
    const urgentRow = await statusOf(urgent);
    const readyRow = await statusOf(ready);
    assert.ok(urgentRow.workflow_id && readyRow.workflow_id, 'the urgent build and then the oldest ready one start');
    assert.equal((await statusOf(cancelled)).workflow_id, null, 'the revived build waits for room: it came after');
    started.push(urgentRow.workflow_id, readyRow.workflow_id);
    for (const workflowId of started) {
      const description = await client.workflow.getHandle(workflowId).describe();
      assert.equal(description.status.name, 'RUNNING', `${workflowId} was started`);
    }
    const { rows: subscribed } = await pool.query<{ count: string }>(
      'SELECT count(*) FROM evaluation_builds WHERE eval_id = $1 AND subscribed_at IS NOT NULL',
      [evalId],
    );
    assert.equal(Number(subscribed[0]!.count), 5, 'the eval subscribed to what it started');
    assert.deepEqual(roomForTwo, full, 'starting changes no status');
  });
});
