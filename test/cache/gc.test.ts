/**
 * `collectGarbage` on the database and cache of real pipeline runs: an expired eval leaves the
 * database, objects only it reached leave the cache once past the grace period, logs of evals past
 * the log retention go, and what the remaining eval needs stays — the real nix-store still
 * substitutes its outputs, references included, after the collection.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { collectGarbage, DAY_MS } from '../../cache/gc.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { logKey, narInfoKey } from '../../cache/layout.ts';
import type { RunSummary } from '../../cli/run-progress.ts';
import { formatHash } from '../../daemon/core/hash.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { startPipeline, writeJobset, type Pipeline } from '../pipeline/harness.ts';
import { nonce, serveCache, substitute } from './helpers.ts';

const REF = 'refs/heads/main';

function job(summary: RunSummary, attr: string): { drvPath: string; out: string } {
  const found = summary.jobs.find((j) => j.attr === attr)!;
  return { drvPath: found.drvPath!, out: found.outputs.out! };
}

describe('gc', () => {
  let pipeline: Pipeline;
  let cache: LocalDirectoryBackend;
  let old: RunSummary;
  let current: RunSummary;

  before(async () => {
    pipeline = await startPipeline();
    cache = new LocalDirectoryBackend(join(pipeline.dir, 'state', 'cache'));
    // One project (one file) on one ref, two commits: derivations named alike are the same.
    const same = { nonce: nonce(), file: 'jobs.nix' };
    old = await pipeline.run(await writeJobset(pipeline.dir, { shared: {}, oldonly: {} }, same), { ref: REF });
    current = await pipeline.run(await writeJobset(pipeline.dir, { shared: {}, user: { deps: ['shared'] } }, same), { ref: REF });
    assert.ok([...old.jobs, ...current.jobs].every((j) => j.status === 'succeeded'));
    await pipeline.db.pool.query(`UPDATE evaluations SET created_at = now() - interval '100 days' WHERE id = $1`, [old.eval.id]);
    await pipeline.db.pool.query(`UPDATE evaluations SET created_at = now() - interval '40 days' WHERE id = $1`, [current.eval.id]);
  });
  after(async () => pipeline?.close());

  it('retires expired evals, keeps what the rest reach, and respects the grace period', async () => {
    const orphan = `nar/${formatHash({ algorithm: 'sha256', digest: randomBytes(32) }, 'base32', false)}.nar.zst`;
    await cache.put(orphan, randomBytes(64), { contentType: 'application/x-nix-nar' });
    const objects = async (): Promise<Set<string>> => {
      const keys = new Set<string>();
      for await (const object of cache.list()) keys.add(object.key);
      return keys;
    };
    const before = await objects();

    const dry = await collectGarbage({ pool: pipeline.db.pool, backend: cache, dryRun: true, now: new Date(Date.now() + 2 * DAY_MS) });
    assert.equal(dry.evalsDeleted, 1);
    // The command, on the same database and cache directory.
    const command = await execa('node', [join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs'), 'gc', '--dry-run', '--json', '--state-dir', join(pipeline.dir, 'state')], {
      env: { ...process.env, DATABASE_URL: pipeline.db.url },
    });
    assert.deepEqual(JSON.parse(command.stdout), { evalsDeleted: 1, deleted: { narinfo: 0, listing: 0, nar: 0, log: 0 }, bytesFreed: 0, kept: before.size - 1, stagingRemoved: 0 });
    assert.deepEqual(await objects(), before, 'a dry run deletes nothing');

    // Everything is younger than the grace period: the eval goes, every object stays.
    const fresh = await collectGarbage({ pool: pipeline.db.pool, backend: cache });
    assert.equal(fresh.evalsDeleted, 1);
    assert.deepEqual(fresh.deleted, { narinfo: 0, listing: 0, nar: 0, log: 0 });
    const { rows } = await pipeline.db.pool.query<{ id: string }>('SELECT id FROM evaluations ORDER BY id');
    assert.deepEqual(rows.map((row) => String(row.id)), [current.eval.id]);

    const later = await collectGarbage({ pool: pipeline.db.pool, backend: cache, now: new Date(Date.now() + 2 * DAY_MS) });
    const after = await objects();
    const oldonly = job(old, 'oldonly');
    const { user, shared } = { user: job(current, 'user'), shared: job(current, 'shared') };
    assert.equal(after.has(narInfoKey(oldonly.out)), false, 'what only the expired eval reached is gone');
    assert.equal(after.has(orphan), false, 'an unreferenced NAR past the grace period is gone');
    assert.equal(after.has(logKey(oldonly.drvPath)), false);
    assert.equal(after.has(logKey(user.drvPath)), false, 'logs of an eval past the log retention are gone');
    for (const path of [user.out, shared.out]) assert.ok(after.has(narInfoKey(path)), `${path} is kept`);
    assert.deepEqual(later.deleted, { narinfo: 1, listing: 1, nar: 2, log: 3 });
    assert.equal(later.evalsDeleted, 0, 'the newest eval of a ref stays, however old');

    const server = await serveCache(cache);
    try {
      const key = (await readFile(join(pipeline.dir, 'state', 'signing-key.pub'), 'utf8')).trim();
      const fetched = await substitute(join(pipeline.dir, 'after-gc'), [user.out], server.url, key);
      assert.ok(fetched.ok, fetched.stderr);
    } finally {
      await server.close();
    }
  });
});
