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
import { SecretFile } from '../../config/secrets.ts';
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
