/** Eval progress for a page of evals: one statement, the same counts as asking eval by eval (real PostgreSQL). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'pg';
import { countProgress, countProgressOf } from '../../queries/progress.ts';
import type { BuildStatus, EvalProgress } from '../../workflows/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
let projectId: string;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

async function insertEval(cachedJobs: number): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO evaluations (project_id, commit_sha, ref, cached_jobs) VALUES ($1, $2, 'refs/heads/main', $3) RETURNING id`,
    [projectId, hex(20), cachedJobs],
  );
  return String(rows[0]!.id);
}

/** A build in `status` (dep-failed on `root`), planned by every eval in `evalIds`; returns its derivation. */
async function insertBuild(status: BuildStatus, evalIds: string[], root?: string): Promise<string> {
  const drvPath = `/nix/store/${hex(16)}-${status}.drv`;
  await db.pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, $2, 'x86_64-linux')`, [drvPath, status]);
  const { rows } = await db.pool.query<{ id: string }>(
    'INSERT INTO build_jobs (drv_path, status, dep_failed_drv_path) VALUES ($1, $2, $3) RETURNING id',
    [drvPath, status, root ?? null],
  );
  for (const evalId of evalIds) {
    await db.pool.query('INSERT INTO evaluation_builds (eval_id, build_id) VALUES ($1, $2)', [evalId, rows[0]!.id]);
  }
  return drvPath;
}

const progress = (counts: Partial<EvalProgress>): EvalProgress => {
  const p = { cached: 0, succeeded: 0, failed: 0, depFailed: 0, cancelled: 0, timedOut: 0, building: 0, pending: 0, ...counts };
  const planned = p.succeeded + p.failed + p.depFailed + p.cancelled + p.timedOut + p.building + p.pending;
  return { total: planned + p.cached, ...p, done: p.building + p.pending === 0 };
};

before(async () => {
  db = await createTestDatabase();
  const repo = await db.pool.query<{ id: string }>(
    `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'o', 'progress', 'https://github.com/o/progress.git') RETURNING id`,
  );
  const project = await db.pool.query<{ id: string }>(`INSERT INTO projects (repository_id, name) VALUES ($1, 'o/progress') RETURNING id`, [
    repo.rows[0]!.id,
  ]);
  projectId = String(project.rows[0]!.id);
});
after(() => db?.drop());

describe('countProgressOf', () => {
  it('counts several evals in one query, shared builds in each, evals without builds as empty', async () => {
    const finished = await insertEval(3);
    const running = await insertEval(0);
    const empty = await insertEval(2);
    const root = await insertBuild('failed', [finished]);
    await insertBuild('dep-failed', [finished], root);
    await insertBuild('succeeded', [finished, running]);
    await insertBuild('succeeded', [finished]);
    await insertBuild('timed-out', [finished]);
    await insertBuild('cancelled', [finished]);
    await insertBuild('building', [running]);
    await insertBuild('uploading', [running]);
    await insertBuild('pending', [running]);
    const unknown = '999999999';

    let queries = 0;
    const counting = { query: (...args: Parameters<Pool['query']>) => (queries++, db.pool.query(...args)) } as unknown as Pool;
    const ids = [finished, running, empty, unknown];
    const counted = await countProgressOf(counting, ids);
    assert.equal(queries, 1, 'one statement for the whole page');

    const expected = new Map([
      [finished, progress({ cached: 3, succeeded: 2, failed: 1, depFailed: 1, timedOut: 1, cancelled: 1 })],
      [running, progress({ succeeded: 1, building: 2, pending: 1 })],
      [empty, progress({ cached: 2 })],
      [unknown, progress({})],
    ]);
    assert.deepEqual(counted, expected);
    assert.deepEqual([...counted.keys()], ids, 'in the order asked');
    for (const id of ids) assert.deepEqual(await countProgress(db.pool, id), expected.get(id), `eval ${id} alone`);
  });

  it('answers an empty page with an empty map', async () => {
    assert.deepEqual(await countProgressOf(db.pool, []), new Map());
  });
});
