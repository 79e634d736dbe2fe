/**
 * GitHub end to end: real payloads from @octokit/webhooks-examples, adapted to a local git
 * repository and signed with a test secret, drive full runs on real Temporal, PostgreSQL and
 * nix-daemon. harmonia-ci acts as a GitHub App (JWTs checked against the app's public key);
 * every request it makes is captured and checked against GitHub's OpenAPI description.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { waitForEvalWorkflow, type Pipeline } from '../pipeline/harness.ts';
import type { FakeForge } from './fake-forge.ts';
import {
  adaptRepository, commitFlake, commitJobs, eventually, githubExample, githubSignature, lastStatus as lastStatusOn, maintainerHeaders, setRef, startGitHubStack, SYSTEM, type GitHubStack, type TestRepository,
} from './support.ts';

describe('GitHub: webhooks to commit statuses', () => {
  let stack: GitHubStack;
  let pipeline: Pipeline;
  let fake: FakeForge;
  let app: FastifyInstance;
  let repo: TestRepository;
  let installation: number;
  const main = 'refs/heads/main';

  const deliver: GitHubStack['deliver'] = (event, payload, options) => stack.deliver(event, payload, options);
  const pushPayload = (sha: string, tree: string, ref = main) => stack.pushPayload(sha, tree, ref);
  const prPayload = async (action: string, number: number, sha: string, author: string, sender = author) => {
    const payload = adaptRepository(await githubExample('pull_request', action), repo, installation);
    const pr = payload.pull_request as Record<string, Record<string, unknown>>;
    Object.assign(payload, { number, sender: { ...(payload.sender as object), login: sender } });
    Object.assign(pr, { number, user: { ...pr.user, login: author } });
    Object.assign(pr.head!, { sha, repo: { ...(pr.head!.repo as object), id: 90_000 + number } });
    Object.assign(pr.base!, { repo: { ...(pr.base!.repo as object), id: repo.id } });
    return payload;
  };
  const evalOf = (sha: string, ref: string) =>
    eventually(`an eval of ${sha.slice(0, 8)} on ${ref}`, async () => {
      const { rows } = await pipeline.db.pool.query<{ id: string }>('SELECT id FROM evaluations WHERE commit_sha = $1 AND ref = $2', [sha, ref]);
      return rows[0] ? String(rows[0].id) : undefined;
    });
  const finished = async (sha: string, ref: string) => {
    const evalId = await evalOf(sha, ref);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId);
    return evalId;
  };
  const lastStatus = (sha: string, context: string) => lastStatusOn(fake, sha, context);
  const deliveryOutcome = (id: string) =>
    eventually(`delivery ${id} handled`, async () => {
      const { rows } = await pipeline.db.pool.query<{ status: string; outcome: string | null }>(
        `SELECT status, outcome FROM forge_deliveries WHERE delivery_id = $1 AND status <> 'pending'`,
        [id],
      );
      return rows[0];
    });

  before(async () => {
    stack = await startGitHubStack();
    ({ pipeline, fake, app, repo, installation } = stack);
  });

  after(async () => {
    await stack?.close();
  });

  it('discovers the installation repositories and enables one as a project', async () => {
    const installed = await deliver('installation', { ...(await githubExample('installation', 'created')), installation: { id: installation } });
    assert.equal(installed.statusCode, 202);
    await eventually('the repository discovered', async () => {
      const { rows } = await pipeline.db.pool.query('SELECT clone_url, forge_installation_id FROM repositories WHERE name = $1', [repo.name]);
      return rows[0];
    });
    const headers = await maintainerHeaders(pipeline.db.pool, fake, 'github');
    const enabled = await app.inject({ method: 'POST', url: `/api/projects/${repo.owner}/${repo.name}/enable`, headers, payload: { prTrust: 'collaborators' } });
    assert.equal(enabled.statusCode, 200, enabled.body);
    assert.deepEqual(enabled.json(), {
      project: 'octo-org/hello-flake', repository: 'octo-org/hello-flake', forge: 'github', enabled: true, prTrust: 'collaborators', pollIntervalSeconds: null,
    });
  });

  it('answers 401 to a missing or wrong signature and 200 to repositories that are not enabled', async () => {
    const payload = await pushPayload('a'.repeat(40), 'b'.repeat(40));
    assert.equal((await deliver('push', payload, { signature: null })).statusCode, 401);
    assert.equal((await deliver('push', payload, { signature: githubSignature('wrong secret', JSON.stringify(payload)) })).statusCode, 401);
    const other = adaptRepository(await githubExample('push'), { ...repo, name: 'not-enabled', id: 6001 });
    const ignored = await deliver('push', Object.assign(other, { ref: main, after: 'c'.repeat(40) }));
    assert.equal(ignored.statusCode, 200);
    assert.equal(ignored.json().status, 'ignored');
  });

  it('turns a push on a branch into one eval, with pending then green statuses linking to the eval', async () => {
    const commit = await commitJobs(repo.dir, { hello: 'true', world: 'true' });
    const payload = await pushPayload(commit.sha, commit.tree);
    const delivery = randomUUID();
    const reply = await deliver('push', payload, { delivery });
    assert.equal(reply.statusCode, 202);
    const atReply = await pipeline.db.pool.query('SELECT 1 FROM evaluations WHERE commit_sha = $1', [commit.sha]);
    assert.equal(atReply.rowCount, 0, 'the reply came before any evaluation work');

    assert.equal((await deliver('push', payload, { delivery })).json().status, 'duplicate');
    await deliver('push', payload); // a new delivery of the same push

    const evalId = await finished(commit.sha, main);
    const { rows } = await pipeline.db.pool.query<{ status: string; tree_hash: string }>(
      'SELECT status, tree_hash FROM evaluations WHERE commit_sha = $1',
      [commit.sha],
    );
    assert.deepEqual(rows, [{ status: 'succeeded', tree_hash: commit.tree }], 'one eval for one push delivered twice');
    const mine = fake.statuses.filter((s) => s.sha === commit.sha);
    assert.equal(mine.find((s) => s.context === 'harmonia-ci/nix-eval')?.state, 'pending');
    assert.equal(lastStatus(commit.sha, 'harmonia-ci/nix-eval')?.state, 'success');
    assert.deepEqual(lastStatus(commit.sha, 'harmonia-ci/nix-build'), {
      sha: commit.sha, state: 'success', context: 'harmonia-ci/nix-build', description: '2/2 built', target_url: `http://ci.example.org/ci/evals/${evalId}`,
    });
  });

  it('runs a Hydra-style jobset from a push: aggregates, failed-with-output, limits and errors as per-attribute statuses', async () => {
    // The jobset of the `run --json` tests (test/cli/hydra-jobsets.test.ts), this time from a push.
    await copyFile(new URL('../cli/fixtures/hydra-jobset.nix', import.meta.url), join(repo.dir, 'jobset.nix'));
    await writeFile(join(repo.dir, '.harmonia-ci.toml'), `attrs = ["ciJobs.${SYSTEM}"]\nstatuses = "failures"\n`);
    const commit = await commitFlake(repo.dir, `import ./jobset.nix { nonce = "${randomUUID()}"; system = "${SYSTEM}"; }`);
    try {
      assert.equal((await deliver('push', await pushPayload(commit.sha, commit.tree))).statusCode, 202);
      const evalId = await finished(commit.sha, main);
      assert.equal(lastStatus(commit.sha, 'harmonia-ci/nix-build')?.state, 'failure');
      const perAttribute = new Map(
        fake.statuses
          .filter((s) => s.sha === commit.sha && s.context.startsWith('harmonia-ci/nix-build/'))
          .map((s) => [s.context.slice(`harmonia-ci/nix-build/ciJobs.${SYSTEM}.`.length), s]),
      );
      const failing = ['broken', 'report', 'release-broken', 'slow', 'quiet', 'content-addressed', 'release-missing', 'cycle-a', 'cycle-b'];
      assert.deepEqual([...perAttribute.keys()].sort(), [...failing].sort(), 'under `failures`, the failed attributes alone');
      for (const status of perAttribute.values()) assert.equal(status.state, 'failure', JSON.stringify(status));
      assert.match(perAttribute.get('report')!.description, /^Failed with output: /);
      assert.match(perAttribute.get('release-broken')!.description, /^Constituents failed: .*broken \(failed\)/);
      assert.match(perAttribute.get('slow')!.description, /^Timed out/);
      assert.match(perAttribute.get('release-missing')!.description, /^Evaluation failed: .*no\.such\.job/);
      assert.match(perAttribute.get('broken')!.target_url ?? '', /\/ci\/builds\/[0-9a-z]{32}$/);
      const { rows } = await pipeline.db.pool.query<{ attr: string; status: string }>(
        `SELECT a.attr, b.status FROM eval_attrs a JOIN build_jobs b ON b.drv_path = a.drv_path WHERE a.eval_id = $1 AND a.attr LIKE '%uses-report'`,
        [evalId],
      );
      assert.deepEqual(rows.map((r) => r.status), ['succeeded'], 'a dependent of a failed-with-output build still builds');
    } finally {
      // The later cases push plain jobs again.
      await rm(join(repo.dir, 'jobset.nix'));
      await writeFile(join(repo.dir, '.harmonia-ci.toml'), 'attrs = ["ciJobs"]\n');
    }
  });

  it('builds a pull request of a collaborator, and one of an outsider only after a collaborator\'s /ci run', async () => {
    fake.collaborators.add('trusted-dev');
    const trusted = await commitJobs(repo.dir, { feature: 'true' }, { branch: 'feature' });
    setRef(repo.dir, 'refs/pull/7/head', trusted.sha);
    fake.pulls.set(7, { author: 'trusted-dev', sameRepository: false });
    assert.equal((await deliver('pull_request', await prPayload('opened', 7, trusted.sha, 'trusted-dev'))).statusCode, 202);
    await finished(trusted.sha, 'refs/pull/7/head');
    assert.equal(lastStatus(trusted.sha, 'harmonia-ci/nix-build')?.state, 'success');

    const first = await commitJobs(repo.dir, { outside: 'true' }, { branch: 'outside' });
    setRef(repo.dir, 'refs/pull/8/head', first.sha);
    fake.pulls.set(8, { author: 'stranger', sameRepository: false });
    const opened = randomUUID();
    await deliver('pull_request', await prPayload('opened', 8, first.sha, 'stranger'), { delivery: opened });
    assert.equal((await deliveryOutcome(opened)).status, 'ignored');
    const second = await commitJobs(repo.dir, { outside: 'true', more: 'true' });
    setRef(repo.dir, 'refs/pull/8/head', second.sha);
    await deliver('pull_request', await prPayload('synchronize', 8, second.sha, 'stranger'));

    const comment = async (author: string, body: string) => {
      const payload = adaptRepository(await githubExample('issue_comment', 'created'), repo, installation);
      Object.assign(payload.issue as object, { number: 8, pull_request: { url: `${fake.url}/repos/${repo.owner}/${repo.name}/pulls/8` } });
      Object.assign(payload.comment as object, { body, user: { login: author }, id: Math.floor(Math.random() * 1e9), created_at: new Date().toISOString() });
      const id = randomUUID();
      assert.equal((await deliver('issue_comment', payload, { delivery: id })).statusCode, 202);
      return deliveryOutcome(id);
    };
    assert.equal((await comment('stranger', '/ci run')).status, 'ignored', 'an outsider cannot start builds');
    assert.equal((await comment('trusted-dev', 'looks fine\n/ci run')).status, 'dispatched');
    await finished(second.sha, 'refs/pull/8/head');
    const { rows } = await pipeline.db.pool.query('SELECT commit_sha FROM evaluations WHERE ref = $1', ['refs/pull/8/head']);
    assert.deepEqual(rows, [{ commit_sha: second.sha }], 'only the head at the time of the comment was built');
    assert.equal(lastStatus(second.sha, 'harmonia-ci/nix-build')?.state, 'success');
  });

  it('lets a force push supersede the running eval: the old commit ends with an error status', async () => {
    const slow = await commitJobs(repo.dir, { slow: '/bin/sleep 4' }, { branch: 'main' });
    await deliver('push', await pushPayload(slow.sha, slow.tree));
    await eventually('the slow eval running', async () => {
      const { rows } = await pipeline.db.pool.query(`SELECT 1 FROM evaluations WHERE commit_sha = $1 AND status IN ('running', 'succeeded')`, [slow.sha]);
      return rows[0];
    });
    const forced = await commitJobs(repo.dir, { quick: 'true' });
    await deliver('push', Object.assign(await pushPayload(forced.sha, forced.tree), { forced: true }));
    await finished(forced.sha, main);
    await eventually('the superseded eval cancelled', async () => {
      const { rows } = await pipeline.db.pool.query<{ status: string }>('SELECT status FROM evaluations WHERE commit_sha = $1', [slow.sha]);
      return rows[0]?.status === 'cancelled' ? true : undefined;
    });
    await eventually('the error status of the superseded commit', () =>
      lastStatus(slow.sha, 'harmonia-ci/nix-build')?.state === 'error' ? true : undefined,
    );
    assert.match(lastStatus(slow.sha, 'harmonia-ci/nix-eval')!.description, /^(Superseded by [0-9a-f]{12}|Cancelled)$/);
    assert.equal(lastStatus(forced.sha, 'harmonia-ci/nix-build')?.state, 'success');
  });

  it('ends with the right statuses while the forge answers 500, then rate-limits with retry-after', async () => {
    const commit = await commitJobs(repo.dir, { sturdy: 'true' });
    const prefix = `POST /repos/${repo.owner}/${repo.name}/statuses/${commit.sha}`;
    fake.faults.push(
      { prefix, status: 500, message: 'Server Error', times: 3 },
      { prefix, status: 403, message: 'You have exceeded a secondary rate limit', headers: { 'retry-after': '1' }, times: 2 },
    );
    await deliver('push', await pushPayload(commit.sha, commit.tree));
    await finished(commit.sha, main);
    const answered = fake.requests.filter((r) => `${r.method} ${r.path}` === prefix).map((r) => r.status);
    assert.deepEqual(answered.slice(0, 5), [500, 500, 500, 403, 403]);
    assert.equal(lastStatus(commit.sha, 'harmonia-ci/nix-eval')?.state, 'success');
    assert.equal(lastStatus(commit.sha, 'harmonia-ci/nix-build')?.state, 'success');
  });

  it('made only requests that GitHub\'s OpenAPI description allows, with app credentials', () => {
    assert.deepEqual(fake.violations, []);
    assert.deepEqual(fake.requests.filter((r) => r.status === 401).map((r) => `${r.method} ${r.path}`), []);
    assert.ok(fake.requests.some((r) => r.path === `/app/installations/${installation}/access_tokens` && r.status === 201));
  });
});
