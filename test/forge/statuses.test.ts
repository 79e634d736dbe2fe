/**
 * The commit status reporter on a real PostgreSQL against a captured GitHub (token auth):
 * what each eval state reports, nothing sent twice, the per-commit budget, and how forge
 * failures surface to Temporal (retryable with retry-after, or dropped when permanent).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createForgeStatusReporter } from '../../activities/coordinator/forge-status.ts';
import { MAX_ATTRIBUTE_STATUSES } from '../../forges/attribute-statuses.ts';
import { SecretFile } from '../../config/secrets.ts';
import { createGiteaClient } from '../../forges/gitea.ts';
import { createGitHubClient } from '../../forges/github.ts';
import type { Forges } from '../../forges/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { startFakeForge, type FakeForge } from './fake-forge.ts';

const SHA = 'a1'.repeat(20);

describe('commit status reporter', () => {
  let db: TestDatabase;
  let fake: FakeForge;
  let dir: string;
  let report: (evalId: string) => Promise<void>;
  let evalId: string;

  const setEval = (status: string, error: string | null = null) =>
    db.pool.query('UPDATE evaluations SET status = $2, error = $3 WHERE id = $1', [evalId, status, error]);
  const sent = () => fake.statuses.map((s) => `${s.context.replace('harmonia-ci/', '')} ${s.state}: ${s.description}`);

  before(async () => {
    db = await createTestDatabase();
    fake = await startFakeForge({ kind: 'github', token: 'pat-123' });
    dir = await mkdtemp(join(tmpdir(), 'statuses-'));
    await writeFile(join(dir, 'token'), 'pat-123\n');
    const github = createGitHubClient({ apiUrl: fake.url, tokenFile: new SecretFile('forges.github.token-file', join(dir, 'token')) });
    const forges: Forges = { github, get: () => github };
    report = createForgeStatusReporter({ pool: db.pool, forges, publicUrl: 'https://ci.example.org/' });
    fake.addRepo({ owner: 'o', name: 'r', id: 1, dir, defaultBranch: 'main' });
    const repo = await db.pool.query<{ id: string }>(
      `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'o', 'r', 'https://github.com/o/r.git') RETURNING id`,
    );
    const project = await db.pool.query<{ id: string }>(`INSERT INTO projects (repository_id, name) VALUES ($1, 'o/r') RETURNING id`, [repo.rows[0]!.id]);
    const evaluation = await db.pool.query<{ id: string }>(
      `INSERT INTO evaluations (project_id, commit_sha, ref) VALUES ($1, $2, 'refs/heads/main') RETURNING id`,
      [project.rows[0]!.id, SHA],
    );
    evalId = String(evaluation.rows[0]!.id);
  });

  after(async () => {
    await fake?.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reports each state once, with a link to the eval', async () => {
    await report(evalId);
    await report(evalId);
    assert.deepEqual(sent(), ['nix-eval pending: Queued for evaluation', 'nix-build pending: Waiting for the evaluation']);
    assert.equal(fake.statuses[0]!.target_url, `https://ci.example.org/ci/evals/${evalId}`);
    await setEval('failed', 'error: attribute "checks" missing\nmore');
    await report(evalId);
    assert.deepEqual(sent().slice(2), ['nix-eval failure: Evaluation failed: attribute "checks" missing', 'nix-build failure: Not built: the evaluation failed']);
    assert.deepEqual(fake.violations, []);
  });

  it('stops progress-only updates near GitHub\'s limit, and everything just below it', async () => {
    fake.statuses.length = 0;
    await setEval('running');
    await db.pool.query(`UPDATE forge_statuses SET sent = 950, state = 'pending', description = 'old' WHERE eval_id = $1`, [evalId]);
    await report(evalId);
    assert.deepEqual(sent(), [], 'only the description changed: not worth a status near the limit');
    await setEval('cancelled');
    await report(evalId);
    assert.deepEqual(sent(), ['nix-eval error: Cancelled', 'nix-build error: Cancelled'], 'a change of state still goes out');
    await db.pool.query('UPDATE forge_statuses SET sent = 995 WHERE eval_id = $1', [evalId]);
    await setEval('failed', 'boom');
    await report(evalId);
    assert.equal(sent().length, 2, 'nothing more once the limit is near');
    await db.pool.query('UPDATE forge_statuses SET sent = 1 WHERE eval_id = $1', [evalId]);
  });

  it('throws a retryable failure after the rate limit\'s wait, and drops what the forge refuses for good', async () => {
    await setEval('running');
    fake.faults.push({ prefix: 'POST /repos/o/r/statuses/', status: 429, message: 'slow down', headers: { 'retry-after': '7' }, times: 1 });
    await assert.rejects(report(evalId), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure);
      assert.equal(error.nonRetryable, false);
      assert.equal(error.nextRetryDelay, 7000);
      return true;
    });
    fake.faults.push({ prefix: 'POST /repos/o/r/statuses/', status: 422, message: 'No commit found for SHA', times: 2 });
    await report(evalId);
  });
});

/** An eval's attributes in every state an attribute status reports, on GitHub and on Gitea. */
for (const kind of ['github', 'gitea'] as const) {
  describe(`per-attribute commit statuses (${kind})`, () => {
    let db: TestDatabase;
    let fake: FakeForge;
    let dir: string;
    let report: (evalId: string) => Promise<void>;
    let client: ReturnType<typeof createGitHubClient>;
    let projectId: string;
    const drv = (name: string): string => `/nix/store/${name.padEnd(32, '0').slice(0, 32).replace(/[^0-9a-df-np-sv-z]/g, '0')}-${name}.drv`;
    const attrStatuses = (sha: string) =>
      fake.statuses.filter((s) => s.sha === sha && s.context.startsWith('harmonia-ci/nix-build/')).map((s) => `${s.context.slice('harmonia-ci/nix-build/'.length)} ${s.state}: ${s.description}`);

    async function createEval(sha: string, mode: string): Promise<string> {
      const { rows } = await db.pool.query<{ id: string }>(
        `INSERT INTO evaluations (project_id, commit_sha, ref, status, statuses) VALUES ($1, $2, 'refs/heads/main', 'succeeded', $3) RETURNING id`,
        [projectId, sha, mode],
      );
      return String(rows[0]!.id);
    }

    async function addBuild(evalId: string, attr: string, name: string, status: string | null, extra: { error?: string; rootCause?: string } = {}): Promise<void> {
      await db.pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, $2, 'x86_64-linux') ON CONFLICT DO NOTHING`, [drv(name), name]);
      await db.pool.query('INSERT INTO eval_attrs (eval_id, attr, drv_path) VALUES ($1, $2, $3)', [evalId, attr, drv(name)]);
      if (status === null) return;
      const build = await db.pool.query<{ id: string }>(
        'INSERT INTO build_jobs (drv_path, status, error, dep_failed_drv_path) VALUES ($1, $2, $3, $4) RETURNING id',
        [drv(name), status, extra.error ?? null, extra.rootCause ? drv(extra.rootCause) : null],
      );
      await db.pool.query('INSERT INTO evaluation_builds (eval_id, build_id) VALUES ($1, $2)', [evalId, build.rows[0]!.id]);
    }

    before(async () => {
      db = await createTestDatabase();
      fake = await startFakeForge({ kind, token: 'pat-123' });
      dir = await mkdtemp(join(tmpdir(), 'attr-statuses-'));
      await writeFile(join(dir, 'token'), 'pat-123\n');
      const tokenFile = new SecretFile(`forges.${kind}.token-file`, join(dir, 'token'));
      client = kind === 'github' ? createGitHubClient({ apiUrl: fake.url, tokenFile }) : createGiteaClient({ url: fake.url, tokenFile });
      const forges: Forges = { [kind]: client, get: () => client };
      report = createForgeStatusReporter({ pool: db.pool, forges, publicUrl: 'https://ci.example.org/' });
      fake.addRepo({ owner: 'o', name: 'r', id: 1, dir, defaultBranch: 'main' });
      const repo = await db.pool.query<{ id: string }>(
        `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ($1, 'o', 'r', 'https://forge.example.org/o/r.git') RETURNING id`,
        [kind],
      );
      projectId = String((await db.pool.query<{ id: string }>(`INSERT INTO projects (repository_id, name) VALUES ($1, 'o/r') RETURNING id`, [repo.rows[0]!.id])).rows[0]!.id);
    });

    after(async () => {
      await fake?.close();
      await db?.drop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('sends failed attributes under `failures`, turns them green after a rebuild, and every attribute under `all`', async () => {
      const sha = 'b2'.repeat(20);
      const evalId = await createEval(sha, 'failures');
      await addBuild(evalId, 'checks.ok', 'ok', 'succeeded');
      await addBuild(evalId, 'checks.broken', 'broken', 'failed', { error: 'builder for broken.drv failed with exit code 1\nmore' });
      await addBuild(evalId, 'checks.dependent', 'dependent', 'dep-failed', { rootCause: 'broken' });
      await addBuild(evalId, 'checks.cached', 'cached', null);
      await addBuild(evalId, 'checks.slow', 'slow', 'building');
      await db.pool.query(`INSERT INTO eval_attrs (eval_id, attr, error) VALUES ($1, 'checks.bad', 'error: undefined variable ''x''')`, [evalId]);

      await report(evalId);
      assert.deepEqual(attrStatuses(sha), [
        "checks.bad failure: Evaluation failed: undefined variable 'x'",
        'checks.broken failure: Failed: builder for broken.drv failed with exit code 1',
        'checks.dependent failure: Not built: broken failed',
      ]);
      const link = (attr: string) => fake.statuses.find((s) => s.context === `harmonia-ci/nix-build/${attr}`)!.target_url;
      assert.equal(link('checks.broken'), `https://ci.example.org/ci/builds/${drv('broken').slice(11, 43)}`);
      assert.equal(link('checks.bad'), `https://ci.example.org/ci/evals/${evalId}`);
      await report(evalId);
      assert.equal(attrStatuses(sha).length, 3, 'nothing is sent twice');

      // A rebuild: the red statuses turn green; attributes never reported stay unreported under `failures`.
      await db.pool.query(`UPDATE build_jobs SET status = 'succeeded', error = NULL, dep_failed_drv_path = NULL WHERE drv_path = ANY($1)`, [[drv('broken'), drv('dependent')]]);
      await report(evalId);
      assert.deepEqual(attrStatuses(sha).slice(3), ['checks.broken success: Built', 'checks.dependent success: Built']);

      await db.pool.query(`UPDATE evaluations SET statuses = 'all' WHERE id = $1`, [evalId]);
      await report(evalId);
      assert.deepEqual(attrStatuses(sha).slice(5), ['checks.cached success: Cached: built before', 'checks.ok success: Built'], 'a building attribute waits for its result');
      assert.deepEqual(fake.violations, []);
    });

    it('reports a failed-with-output build and an aggregate whose constituent failed as failures', async () => {
      const sha = 'e5'.repeat(20);
      const evalId = await createEval(sha, 'failures');
      await addBuild(evalId, 'agg-report', 'agg-report', 'failed-with-output', { error: 'the build produced output but marked itself failed (1 test failed)' });
      await addBuild(evalId, 'agg-part', 'agg-part', 'failed', { error: 'boom' });
      await addBuild(evalId, 'agg-fine', 'agg-fine', 'succeeded');
      await addBuild(evalId, 'agg-release', 'agg-release', 'succeeded');
      await addBuild(evalId, 'agg-waiting', 'agg-waiting', 'succeeded');
      await addBuild(evalId, 'agg-later', 'agg-later', 'building');
      const constituents = (...names: string[]) => JSON.stringify(names.map((name) => ({ attr: name, drvPath: drv(name) })));
      await db.pool.query(`UPDATE eval_attrs SET constituents = $2 WHERE eval_id = $1 AND attr = 'agg-release'`, [evalId, constituents('agg-fine', 'agg-part')]);
      await db.pool.query(`UPDATE eval_attrs SET constituents = $2 WHERE eval_id = $1 AND attr = 'agg-waiting'`, [evalId, constituents('agg-fine', 'agg-later')]);
      await report(evalId);
      assert.deepEqual(attrStatuses(sha).sort(), [
        'agg-part failure: Failed: boom',
        'agg-release failure: Constituents failed: agg-part (failed)',
        'agg-report failure: Failed with output: the build produced output but marked itself failed (1 test failed)',
      ], 'an aggregate waiting for a constituent has no status yet');
      assert.deepEqual(fake.violations, []);
    });

    it('sends only the summary by default', async () => {
      const sha = 'c3'.repeat(20);
      const evalId = await createEval(sha, 'summary');
      await addBuild(evalId, 'checks.other', 'other', 'failed', { error: 'boom' });
      await report(evalId);
      assert.deepEqual(attrStatuses(sha), []);
      assert.deepEqual(fake.statuses.filter((s) => s.sha === sha).map((s) => s.context), ['harmonia-ci/nix-eval', 'harmonia-ci/nix-build']);
    });

    if (kind === 'github') {
      it('caps the attribute statuses of a commit (GitHub\'s 1,000), failures first, and says so in the summary', async () => {
        assert.equal(MAX_ATTRIBUTE_STATUSES, 1000);
        // The cap as the reporter applies it, at a size a test can send quickly.
        const capped = createForgeStatusReporter({ pool: db.pool, forges: { github: client, get: () => client }, publicUrl: 'https://ci.example.org/', attributeStatusLimit: 3 });
        const sha = 'd4'.repeat(20);
        const evalId = await createEval(sha, 'all');
        await addBuild(evalId, 'checks.a-fine', 'fine', 'succeeded');
        await db.pool.query(`INSERT INTO eval_attrs (eval_id, attr, error) SELECT $1, 'checks.b' || i, 'error: broken' FROM generate_series(1, 4) i`, [evalId]);
        await capped(evalId);
        assert.deepEqual(attrStatuses(sha), ['checks.b1', 'checks.b2', 'checks.b3'].map((attr) => `${attr} failure: Evaluation failed: broken`), 'failures first, then by name');
        const summary = fake.statuses.filter((s) => s.sha === sha && s.context === 'harmonia-ci/nix-build').at(-1)!;
        assert.match(summary.description, /; statuses for 3 of 5 attributes \(limit 3\)$/);
        await capped(evalId);
        assert.equal(attrStatuses(sha).length, 3, 'the cap holds on the next report');
        assert.deepEqual(fake.violations, []);
      });
    }
  });
}
