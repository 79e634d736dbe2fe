/** The schema's constraints and idempotency guarantees, on a clone of the migrated template (real PostgreSQL). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { connectionConfig } from '../../db/pool.ts';
import { createTestDatabase } from '../helpers/database.ts';
import type { TestDatabase } from '../helpers/database.ts';

const CHECK_VIOLATION = '23514';
const FOREIGN_KEY_VIOLATION = '23503';

let db: TestDatabase;
let projectId: number;

function sha(): string {
  return randomBytes(20).toString('hex');
}

function drvPath(name: string): string {
  return `/nix/store/${randomBytes(16).toString('hex').slice(0, 32)}-${name}.drv`;
}

async function insertDerivation(name: string): Promise<string> {
  const path = drvPath(name);
  await db.pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, $2, 'x86_64-linux')`, [path, name]);
  return path;
}

async function rejectsWith(promise: Promise<unknown>, code: string, constraint?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as { code?: string }).code, code, (error as Error).message);
    if (constraint) assert.match((error as { constraint?: string }).constraint ?? '', constraint);
    return true;
  });
}

before(async () => {
  db = await createTestDatabase();
  const repo = await db.pool.query<{ id: number }>(
    `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'nix-community', 'harmonia', 'https://github.com/nix-community/harmonia.git') RETURNING id`,
  );
  const project = await db.pool.query<{ id: number }>(
    `INSERT INTO projects (repository_id, name) VALUES ($1, 'nix-community/harmonia') RETURNING id`,
    [repo.rows[0]?.id],
  );
  projectId = project.rows[0]?.id as number;
});
after(() => db.drop());

describe('status columns', () => {
  it('reject an evaluation status outside the state machine', async () => {
    await rejectsWith(
      db.pool.query(`INSERT INTO evaluations (project_id, commit_sha, ref, status) VALUES ($1, $2, 'refs/heads/main', 'done')`, [projectId, sha()]),
      CHECK_VIOLATION,
      /evaluations_status_check/,
    );
  });

  it('reject a build status outside the state machine, and accept each valid one', async () => {
    const drv = await insertDerivation('hello');
    await rejectsWith(db.pool.query(`INSERT INTO build_jobs (drv_path, status) VALUES ($1, 'running')`, [drv]), CHECK_VIOLATION);
    for (const status of ['pending', 'building', 'uploading', 'succeeded', 'failed', 'cancelled', 'timed-out']) {
      await db.pool.query(
        `INSERT INTO build_jobs (drv_path, status) VALUES ($1, $2) ON CONFLICT (drv_path) DO UPDATE SET status = excluded.status`,
        [drv, status],
      );
    }
  });

  it('require dep-failed builds to name their root cause, and only them', async () => {
    const root = await insertDerivation('broken-dep');
    const drv = await insertDerivation('dependent');
    await rejectsWith(db.pool.query(`INSERT INTO build_jobs (drv_path, status) VALUES ($1, 'dep-failed')`, [drv]), CHECK_VIOLATION);
    await rejectsWith(
      db.pool.query(`INSERT INTO build_jobs (drv_path, status, dep_failed_drv_path) VALUES ($1, 'failed', $2)`, [drv, root]),
      CHECK_VIOLATION,
    );
    await db.pool.query(`INSERT INTO build_jobs (drv_path, status, dep_failed_drv_path) VALUES ($1, 'dep-failed', $2)`, [drv, root]);
  });

  it('reject an eval attribute with both or neither of derivation and error', async () => {
    const evalId = (
      await db.pool.query<{ id: number }>(`INSERT INTO evaluations (project_id, commit_sha, ref) VALUES ($1, $2, 'refs/heads/attrs') RETURNING id`, [projectId, sha()])
    ).rows[0]?.id;
    const drv = await insertDerivation('attr');
    await rejectsWith(db.pool.query(`INSERT INTO eval_attrs (eval_id, attr) VALUES ($1, 'checks.a')`, [evalId]), CHECK_VIOLATION);
    await rejectsWith(
      db.pool.query(`INSERT INTO eval_attrs (eval_id, attr, drv_path, error) VALUES ($1, 'checks.b', $2, 'boom')`, [evalId, drv]),
      CHECK_VIOLATION,
    );
    await db.pool.query(`INSERT INTO eval_attrs (eval_id, attr, drv_path) VALUES ($1, 'checks.c', $2)`, [evalId, drv]);
    await db.pool.query(`INSERT INTO eval_attrs (eval_id, attr, error) VALUES ($1, 'checks.d', 'infinite recursion')`, [evalId]);
  });

  it('reject a build of a derivation that was never recorded', async () => {
    await rejectsWith(db.pool.query(`INSERT INTO build_jobs (drv_path) VALUES ($1)`, [drvPath('ghost')]), FOREIGN_KEY_VIOLATION);
  });

  it('reject an unknown forge, PR trust level and non-positive scheduling shares', async () => {
    await rejectsWith(
      db.pool.query(`INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('bitbucket', 'a', 'b', 'x')`),
      CHECK_VIOLATION,
    );
    const repo = (await db.pool.query<{ repository_id: number }>('SELECT repository_id FROM projects WHERE id = $1', [projectId])).rows[0];
    await rejectsWith(
      db.pool.query(`INSERT INTO projects (repository_id, name, pr_trust) VALUES ($1, 'p2', 'anyone')`, [repo?.repository_id]),
      CHECK_VIOLATION,
    );
    await rejectsWith(
      db.pool.query(`INSERT INTO projects (repository_id, name, scheduling_shares) VALUES ($1, 'p3', 0)`, [repo?.repository_id]),
      CHECK_VIOLATION,
    );
    const defaults = await db.pool.query('SELECT scheduling_shares, pr_trust, enabled FROM projects WHERE id = $1', [projectId]);
    assert.deepEqual(defaults.rows[0], { scheduling_shares: 100, pr_trust: 'collaborators', enabled: true });
  });
});

describe('evaluations uniqueness (webhook idempotency)', () => {
  const insertOnce = `
    INSERT INTO evaluations (project_id, commit_sha, ref, event) VALUES ($1, $2, $3, 'push')
    ON CONFLICT (project_id, commit_sha, ref) DO NOTHING
    RETURNING id`;

  it('creates the eval on the first delivery and nothing on a redelivery', async () => {
    const commit = sha();
    const first = await db.pool.query(insertOnce, [projectId, commit, 'refs/heads/main']);
    const second = await db.pool.query(insertOnce, [projectId, commit, 'refs/heads/main']);
    assert.equal(first.rowCount, 1);
    assert.equal(second.rowCount, 0, 'the redelivered webhook starts nothing');
    const other = await db.pool.query(insertOnce, [projectId, commit, 'refs/heads/staging']);
    assert.equal(other.rowCount, 1, 'the same commit on another ref is another eval');
  });

  it('lets exactly one of two simultaneous deliveries create the eval', async () => {
    const commit = sha();
    const clients = [new pg.Client(connectionConfig(db.url)), new pg.Client(connectionConfig(db.url))];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      await Promise.all(clients.map((c) => c.query('BEGIN')));
      const first = await clients[0]?.query(insertOnce, [projectId, commit, 'refs/pull/7/head']);
      // The second insert waits on the first transaction's uncommitted row, then sees the conflict.
      const secondPending = clients[1]?.query(insertOnce, [projectId, commit, 'refs/pull/7/head']);
      await clients[0]?.query('COMMIT');
      const second = await secondPending;
      await clients[1]?.query('COMMIT');
      assert.equal((first?.rowCount ?? 0) + (second?.rowCount ?? 0), 1);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe('fairness bookkeeping', () => {
  it('halves recorded builder time every 13 hours', async () => {
    await db.pool.query('SELECT record_builder_time($1, 3600)', [projectId]);
    await db.pool.query(`UPDATE project_usage SET decayed_at = now() - interval '13 hours' WHERE project_id = $1`, [projectId]);
    const decayed = await db.pool.query<{ builder_seconds: number; seconds_per_share: number }>(
      'SELECT builder_seconds, seconds_per_share FROM project_fairness WHERE project_id = $1',
      [projectId],
    );
    assert.ok(Math.abs((decayed.rows[0]?.builder_seconds ?? 0) - 1800) < 0.1);
    assert.ok(Math.abs((decayed.rows[0]?.seconds_per_share ?? 0) - 18) < 0.01);
    await db.pool.query('SELECT record_builder_time($1, 200)', [projectId]);
    const added = await db.pool.query<{ builder_seconds: number }>('SELECT builder_seconds FROM project_usage WHERE project_id = $1', [projectId]);
    assert.ok(Math.abs((added.rows[0]?.builder_seconds ?? 0) - 2000) < 0.1, 'new time adds to the decayed total');
  });
});
