/**
 * Build products recorded with a build's result (real PostgreSQL): a run that produced output
 * replaces what an earlier run of the same derivation listed, including with nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { createBuildActivities } from '../../activities/coordinator/build-records.ts';
import type { BuildProduct } from '../../workflows/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
// Never connects: recording a build talks to PostgreSQL only.
const client = new Client();

before(async () => {
  db = await createTestDatabase();
});
after(() => db?.drop());

async function insertBuild(): Promise<string> {
  const drvPath = `/nix/store/${randomBytes(16).toString('hex')}-products.drv`;
  await db.pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, 'products', 'x86_64-linux')`, [drvPath]);
  await db.pool.query('INSERT INTO build_jobs (drv_path) VALUES ($1)', [drvPath]);
  return drvPath;
}

async function productNames(drvPath: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>('SELECT name FROM build_products WHERE drv_path = $1 ORDER BY position', [drvPath]);
  return rows.map((row) => row.name);
}

/** What a rebuild does first: the build is open again. */
async function reopen(drvPath: string): Promise<void> {
  await db.pool.query(`UPDATE build_jobs SET status = 'pending', started_at = NULL, finished_at = NULL WHERE drv_path = $1`, [drvPath]);
}

const product = (name: string): BuildProduct => ({ type: 'file', subtype: 'binary-dist', path: `/nix/store/${'a'.repeat(32)}-out/${name}`, name });

describe('build products', () => {
  it('are replaced by each run that produced output, and removed by one that listed none', async () => {
    const activities = createBuildActivities({ pool: db.pool, client });
    const drvPath = await insertBuild();
    const other = await insertBuild();
    await activities.recordBuild({ drvPath: other, status: 'succeeded', products: [product('kept')] });

    await activities.recordBuild({ drvPath, status: 'succeeded', products: [product('first.tar'), product('notes.txt')] });
    assert.deepEqual(await productNames(drvPath), ['first.tar', 'notes.txt']);

    await reopen(drvPath);
    await activities.recordBuild({ drvPath, status: 'failed-with-output', products: [product('second.tar')] });
    assert.deepEqual(await productNames(drvPath), ['second.tar'], 'the rebuild lists its own products only');

    await reopen(drvPath);
    await activities.recordBuild({ drvPath, status: 'succeeded' });
    assert.deepEqual(await productNames(drvPath), [], 'a run without products leaves none of the earlier ones');

    await reopen(drvPath);
    await activities.recordBuild({ drvPath, status: 'failed', error: 'boom' });
    assert.deepEqual(await productNames(other), ['kept'], "another build's products are untouched throughout");
  });
});
