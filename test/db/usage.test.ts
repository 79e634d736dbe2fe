/**
 * Builder time accounted per project (real PostgreSQL): a build is charged once, when it first
 * reaches a final state, split equally between the projects whose evals planned it; and a project
 * over its share of the decayed usage is told apart from one that is not.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { createBuildActivities } from '../../activities/coordinator/build-records.ts';
import { overShare } from '../../activities/coordinator/build-starts.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
// Never connects: recording a build talks to PostgreSQL only.
const client = new Client();
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

async function insertProject(name: string, shares = 100): Promise<string> {
  const repo = await db.pool.query<{ id: string }>(
    `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'o', $1, $2) RETURNING id`,
    [name, `https://github.com/o/${name}.git`],
  );
  const { rows } = await db.pool.query<{ id: string }>(
    'INSERT INTO projects (repository_id, name, scheduling_shares) VALUES ($1, $2, $3) RETURNING id',
    [repo.rows[0]!.id, `o/${name}`, shares],
  );
  return String(rows[0]!.id);
}

async function insertEval(projectId: string, status = 'running'): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO evaluations (project_id, commit_sha, ref, status) VALUES ($1, $2, 'refs/heads/main', $3) RETURNING id`,
    [projectId, hex(20), status],
  );
  return String(rows[0]!.id);
}

/** A pending build planned by every eval in `evalIds`; returns its derivation. */
async function insertBuild(evalIds: string[]): Promise<string> {
  const drvPath = `/nix/store/${hex(16)}-usage.drv`;
  await db.pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, 'usage', 'x86_64-linux')`, [drvPath]);
  const { rows } = await db.pool.query<{ id: string }>('INSERT INTO build_jobs (drv_path) VALUES ($1) RETURNING id', [drvPath]);
  for (const evalId of evalIds) await db.pool.query('INSERT INTO evaluation_builds (eval_id, build_id) VALUES ($1, $2)', [evalId, rows[0]!.id]);
  return drvPath;
}

/** Makes the build's recorded start `seconds` ago. */
async function startedAgo(drvPath: string, seconds: number): Promise<void> {
  await db.pool.query(`UPDATE build_jobs SET started_at = now() - make_interval(secs => $2) WHERE drv_path = $1`, [drvPath, seconds]);
}

async function usage(projectId: string): Promise<number> {
  const { rows } = await db.pool.query<{ builder_seconds: number }>('SELECT builder_seconds FROM project_fairness WHERE project_id = $1', [projectId]);
  return rows[0]!.builder_seconds;
}

async function clearUsage(): Promise<void> {
  await db.pool.query('DELETE FROM project_usage');
}

const near = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) < 2, `${what}: ${actual} builder seconds, expected about ${expected}`);

before(async () => {
  db = await createTestDatabase();
});
after(() => db?.drop());

describe('builder time per project', () => {
  it('charges a build once, however often its result is recorded, split equally between its projects', async () => {
    await clearUsage();
    const alpha = await insertProject('alpha');
    const beta = await insertProject('beta', 300);
    const drvPath = await insertBuild([await insertEval(alpha), await insertEval(alpha), await insertEval(beta)]);
    const activities = createBuildActivities({ pool: db.pool, client });
    await activities.recordBuild({ drvPath, status: 'building', attempt: 1, builder: 'b1' });
    await startedAgo(drvPath, 600);
    assert.equal(await usage(alpha), 0, 'nothing is charged before the build ends');

    // Two coordinators record the result at once (a workflow task run again elsewhere), then a
    // retried activity records it again.
    const result = { drvPath, status: 'failed' as const, attempt: 1, error: 'exit 1' };
    const other = createBuildActivities({ pool: db.pool, client });
    await Promise.all([activities.recordBuild(result), other.recordBuild(result)]);
    await activities.recordBuild(result);

    // Two evals of alpha and one of beta: two projects, half each, whatever their shares.
    near(await usage(alpha), 300, 'alpha');
    near(await usage(beta), 300, 'beta');
  });

  it('charges only projects that still want the build, unless none does, and nothing for a build that never started', async () => {
    await clearUsage();
    const gamma = await insertProject('gamma');
    const delta = await insertProject('delta');
    const activities = createBuildActivities({ pool: db.pool, client });

    const shared = await insertBuild([await insertEval(gamma), await insertEval(delta, 'cancelled')]);
    await activities.recordBuild({ drvPath: shared, status: 'building', attempt: 1, builder: 'b1' });
    await startedAgo(shared, 100);
    await activities.recordBuild({ drvPath: shared, status: 'succeeded', attempt: 1, outputs: [] });
    near(await usage(gamma), 100, 'gamma, whose eval still wanted the build');
    assert.equal(await usage(delta), 0, 'delta cancelled its eval');

    const forCache = await insertBuild([await insertEval(delta, 'cancelled')]);
    await activities.recordBuild({ drvPath: forCache, status: 'building', attempt: 1, builder: 'b1' });
    await startedAgo(forCache, 50);
    await activities.recordBuild({ drvPath: forCache, status: 'timed-out', attempt: 1 });
    near(await usage(delta), 50, 'delta, the only project that planned a build it then left running');

    const queued = await insertBuild([await insertEval(gamma)]);
    await activities.recordBuild({ drvPath: queued, status: 'cancelled', attempt: 1 });
    near(await usage(gamma), 100, 'gamma, after a build withdrawn from the queue');
  });

  it('charges a rebuild from its own start, not from the first build', async () => {
    await clearUsage();
    const epsilon = await insertProject('epsilon');
    const drvPath = await insertBuild([await insertEval(epsilon)]);
    const activities = createBuildActivities({ pool: db.pool, client });
    await activities.recordBuild({ drvPath, status: 'building', attempt: 1, builder: 'b1' });
    await startedAgo(drvPath, 3600);
    await activities.recordBuild({ drvPath, status: 'failed', attempt: 1, error: 'exit 1' });
    near(await usage(epsilon), 3600, 'the first build');

    // A rebuild puts it back to pending (scheduler.ts, resetBuilds); its new workflow run begins.
    await db.pool.query(`UPDATE build_jobs SET status = 'pending', error = NULL, finished_at = NULL WHERE drv_path = $1`, [drvPath]);
    const begun = await activities.beginBuild(drvPath);
    assert.ok(begun.inputs, 'the rebuild is built, not repeated');
    await activities.recordBuild({ drvPath, status: 'building', attempt: 1, builder: 'b2' });
    await startedAgo(drvPath, 60);
    await activities.recordBuild({ drvPath, status: 'succeeded', attempt: 1, outputs: [] });
    near(await usage(epsilon), 3660, 'the first build and the rebuild');
  });
});

describe('over its share', () => {
  const isOver = async (projectId: string): Promise<boolean> => {
    const { rows } = await db.pool.query<{ over_share: boolean }>(overShare('$1::bigint'), [projectId]);
    return rows[0]!.over_share;
  };

  it('is a project with more seconds per share than all enabled projects together', async () => {
    await clearUsage();
    await db.pool.query('UPDATE projects SET enabled = false');
    const heavy = await insertProject('heavy');
    assert.equal(await isOver(heavy), false, 'nobody has used anything');
    await db.pool.query('SELECT record_builder_time($1, 3600)', [heavy]);
    assert.equal(await isOver(heavy), false, 'a project alone is at its share');

    const idle = await insertProject('idle');
    assert.equal(await isOver(heavy), true, 'an idle project with equal shares is owed its part');
    assert.equal(await isOver(idle), false);
    const light = await insertProject('light', 300);
    // Per share: heavy 36 s, light 12 s; the fleet 7200 s over 500 shares, 14.4 s.
    await db.pool.query('SELECT record_builder_time($1, 3600)', [light]);
    assert.equal(await isOver(light), false, 'light has three times the shares and used as much as heavy');
    assert.equal(await isOver(heavy), true);
    // Per share: heavy 36 s, light 84 s; the fleet 57.6 s.
    await db.pool.query('SELECT record_builder_time($1, 6 * 3600)', [light]);
    assert.equal(await isOver(light), true);
    assert.equal(await isOver(heavy), false, 'heavy is now below the fleet’s seconds per share');

    await db.pool.query('UPDATE projects SET enabled = false WHERE id = ANY($1::bigint[])', [[light, idle]]);
    await db.pool.query('DELETE FROM project_usage WHERE project_id = $1', [light]);
    assert.equal(await isOver(heavy), false, 'disabled projects are owed nothing: heavy is alone again');
  });
});
