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
import { createBuildActivities } from '../../activities/coordinator/build-records.ts';
import { buildWorkflowId } from '../../workflows/definitions.ts';
import type { BuildWorkflowInput } from '../../workflows/types.ts';
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

/** A new eval of a new project, with a helper that plans one build in it. */
async function newEval(name: string): Promise<{
  evalId: string;
  build(name: string, options?: { status?: string; subscribed?: boolean; inputs?: string[]; priority?: number }): Promise<string>;
}> {
  const pool = db.pool;
  const repo = await pool.query<{ id: string }>(
    `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'o', $1, $2) RETURNING id`,
    [name, `https://github.com/o/${name}.git`],
  );
  const project = await pool.query<{ id: string }>('INSERT INTO projects (repository_id, name) VALUES ($1, $2) RETURNING id', [repo.rows[0]!.id, `o/${name}`]);
  const evaluation = await pool.query<{ id: string }>(
    `INSERT INTO evaluations (project_id, commit_sha, ref, status) VALUES ($1, $2, 'refs/heads/main', 'running') RETURNING id`,
    [project.rows[0]!.id, randomBytes(20).toString('hex')],
  );
  const evalId = String(evaluation.rows[0]!.id);
  const tag = randomBytes(8).toString('hex');
  return {
    evalId,
    async build(buildName, options = {}) {
      const drvPath = `/nix/store/${randomBytes(16).toString('hex')}-${tag}-${buildName}.drv`;
      await pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, $2, 'x86_64-linux')`, [drvPath, `${tag}-${buildName}`]);
      for (const input of options.inputs ?? []) {
        await pool.query(`INSERT INTO derivation_inputs (drv_path, input_drv_path, output_names) VALUES ($1, $2, '{out}')`, [drvPath, input]);
      }
      const { rows } = await pool.query<{ id: string }>(
        'INSERT INTO build_jobs (drv_path, status, workflow_id, priority) VALUES ($1, $2, $3, $4) RETURNING id',
        [drvPath, options.status ?? 'pending', options.subscribed ? `build/held-${buildName}-${tag}` : null, options.priority ?? 0],
      );
      await pool.query(
        `INSERT INTO evaluation_builds (eval_id, build_id, subscribed_at) VALUES ($1, $2, ${options.subscribed ? 'now()' : 'NULL'})`,
        [evalId, rows[0]!.id],
      );
      return drvPath;
    },
  };
}

/** The input the build workflow's current run of `drvPath` was started with, from its history on the server. */
async function startInput(drvPath: string): Promise<BuildWorkflowInput> {
  const history = await client.workflow.getHandle(buildWorkflowId(drvPath)).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  assert.ok(payload?.data, `the first event of ${drvPath}'s workflow carries its input`);
  return JSON.parse(Buffer.from(payload.data).toString('utf8')) as BuildWorkflowInput;
}

describe('an eval pass', () => {
  it('revives cancelled builds, propagates failures, starts ready builds up to the window by priority, and counts progress', async () => {
    const pool = db.pool;
    const { evalId, build } = await newEval('pass');
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

  it("gives the first run of a build's workflow what beginBuild would answer, and no later run", async () => {
    const pool = db.pool;
    const { evalId, build } = await newEval('first-run');
    const input = await build('input', { status: 'succeeded' });
    const outPath = `/nix/store/${randomBytes(16).toString('hex')}-input`;
    const narHash = 'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s';
    await pool.query(
      `INSERT INTO derivation_outputs (drv_path, output_name, out_path, nar_hash, nar_size, registered_at) VALUES ($1, 'out', $2, $3, 120, now())`,
      [input, outPath, narHash],
    );
    const fresh = await build('fresh', { inputs: [input] });
    await pool.query('UPDATE derivations SET timeout_seconds = 600 WHERE drv_path = $1', [fresh]);
    // Pending and clean, but a run of its workflow has been and gone (ended since the build was found ready).
    const ranBefore = await build('ran-before', { inputs: [input] });
    const earlier = await client.workflow.start('buildWorkflow', { workflowId: buildWorkflowId(ranBefore), taskQueue: `nobody-${evalId}`, args: [] });
    await earlier.terminate('an earlier run');
    // Started once, then put back to pending (a rebuild): not a first run.
    const rebuilt = await build('rebuilt', { inputs: [input] });
    await pool.query(`UPDATE build_jobs SET started_at = now() - interval '1 hour', exit_code = 1 WHERE drv_path = $1`, [rebuilt]);

    await advanceEval(pool, client, { evalId, evalWorkflowId: `eval/${evalId}`, window: 10 });
    for (const drvPath of [fresh, ranBefore, rebuilt]) started.push(buildWorkflowId(drvPath));

    const answer = await createBuildActivities({ pool, client }).beginBuild(fresh);
    assert.deepEqual(answer, { inputs: { inputPaths: [outPath], canonicalNarHashes: { [outPath]: narHash }, limits: { timeoutSeconds: 600 } } });
    assert.deepEqual((await startInput(fresh)).begun, answer.inputs, "a first run carries beginBuild's answer");
    assert.equal((await startInput(ranBefore)).begun, undefined, 'a run after another asks beginBuild itself');
    const description = await client.workflow.getHandle(buildWorkflowId(ranBefore)).describe();
    assert.equal(description.status.name, 'RUNNING', 'the build whose earlier run ended is started again');
    assert.equal((await startInput(rebuilt)).begun, undefined, 'a build started before asks beginBuild itself');
  });
});
