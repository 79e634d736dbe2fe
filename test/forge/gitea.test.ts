/**
 * Gitea end to end, driven through `harmonia-ci projects`: enabling registers the repository
 * webhook, a signed push (X-Gitea-Signature) becomes an eval with commit statuses, a poll
 * interval makes the default branch's head build without any webhook, and disabling removes the
 * hook. Every request to the fake Gitea is checked against the paths and fields of Gitea's API.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app.ts';
import { createLogger } from '../../lib/log.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { startPipeline, waitForEvalWorkflow, type Pipeline } from '../pipeline/harness.ts';
import { startFakeForge, type FakeForge } from './fake-forge.ts';
import { commitJobs, createFlakeRepo, eventually, giteaSignature, type TestRepository } from './support.ts';

const SECRET = `gitea-${randomUUID()}`;
const TOKEN = `token-${randomUUID()}`;

describe('Gitea: projects, webhooks, statuses and polling', () => {
  let pipeline: Pipeline;
  let fake: FakeForge;
  let app: FastifyInstance;
  let repo: TestRepository;
  let secrets: string;
  let env: Record<string, string>;

  const cli = (...args: string[]) => execa(process.execPath, [join(PROJECT_ROOT, 'bin/harmonia-ci.mjs'), ...args], { env, extendEnv: true, reject: false });
  const evalOf = (sha: string) =>
    eventually(`an eval of ${sha.slice(0, 8)}`, async () => {
      const { rows } = await pipeline.db.pool.query<{ id: string; event: string }>('SELECT id, event FROM evaluations WHERE commit_sha = $1', [sha]);
      return rows[0];
    });
  const lastStatus = (sha: string, context: string) => fake.statuses.filter((s) => s.sha === sha && s.context === context).at(-1);
  const pushPayload = (sha: string) => ({
    ref: 'refs/heads/main',
    before: '0'.repeat(40),
    after: sha,
    compare_url: '',
    commits: [{ id: sha, message: 'jobs\n', url: '' }],
    head_commit: { id: sha, message: 'jobs\n', url: '' },
    repository: {
      id: repo.id, name: repo.name, full_name: `${repo.owner}/${repo.name}`, owner: { id: 1, login: repo.owner, username: repo.owner },
      clone_url: `file://${repo.dir}`, default_branch: 'main', private: false,
    },
    pusher: { id: 1, login: repo.owner, username: repo.owner },
    sender: { id: 1, login: repo.owner, username: repo.owner },
  });
  const deliver = (payload: unknown, signature?: string) => {
    const body = JSON.stringify(payload);
    return app.inject({
      method: 'POST',
      url: '/webhook/gitea',
      headers: {
        'content-type': 'application/json',
        'x-gitea-event': 'push',
        'x-gitea-delivery': randomUUID(),
        'x-gitea-signature': signature ?? giteaSignature(SECRET, body),
      },
      payload: body,
    });
  };

  before(async () => {
    fake = await startFakeForge({ kind: 'gitea', token: TOKEN });
    secrets = await mkdtemp(join(tmpdir(), 'gitea-secrets-'));
    await writeFile(join(secrets, 'token'), TOKEN);
    await writeFile(join(secrets, 'webhook'), SECRET);
    const forgeEnv = {
      HARMONIA_CI_FORGES_GITEA_URL: fake.url,
      HARMONIA_CI_FORGES_GITEA_TOKEN_FILE: join(secrets, 'token'),
      HARMONIA_CI_FORGES_GITEA_WEBHOOK_SECRET_FILE: join(secrets, 'webhook'),
      HARMONIA_CI_API_PUBLIC_URL: 'https://ci.example.org',
    };
    pipeline = await startPipeline({ env: forgeEnv });
    env = {
      ...forgeEnv,
      HARMONIA_CI_DATABASE_URL: pipeline.db.url,
      HARMONIA_CI_TEMPORAL_ADDRESS: pipeline.config.temporal.address!,
      HARMONIA_CI_TEMPORAL_NAMESPACE: pipeline.config.temporal.namespace,
      HARMONIA_CI_STATE_DIR: join(pipeline.dir, 'cli-state'),
    };
    repo = { owner: 'team', name: 'app', id: 31, dir: join(pipeline.dir, 'app') };
    await createFlakeRepo(repo.dir);
    await commitJobs(repo.dir, { first: 'true' });
    fake.addRepo({ ...repo, defaultBranch: 'main' });
    app = buildApp({ config: pipeline.config, log: createLogger({ level: 'silent' }), deps: { pool: pipeline.db.pool, temporal: pipeline.client } });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await pipeline?.close();
    await fake?.close();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  it('enables a discovered repository and registers its webhook', async () => {
    const wrong = await cli('projects', 'enable', 'team/app', '--statuses', 'every');
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.stderr, /unknown statuses "every": expected summary, failures, all/);
    const enabled = await cli('projects', 'enable', 'team/app', '--pr-trust', 'all', '--statuses', 'failures');
    assert.equal(enabled.exitCode, 0, enabled.stderr);
    const settings = await pipeline.db.pool.query<{ settings: { statuses?: string } }>(`SELECT settings FROM projects WHERE name = 'team/app'`);
    assert.equal(settings.rows[0]?.settings.statuses, 'failures', 'the project setting is stored for its evals');
    assert.match(enabled.stdout, /enabled team\/app \(gitea team\/app\), pr-trust everyone/);
    assert.deepEqual(
      fake.hooks.map((h) => ({ repo: h.repo, config: h.config, events: h.events, active: h.active })),
      [{ repo: 'team/app', config: { url: 'https://ci.example.org/webhook/gitea', content_type: 'json', secret: SECRET }, events: ['push', 'pull_request', 'issue_comment'], active: true }],
    );
    const listed = await cli('projects', 'list', '--json');
    assert.equal(listed.exitCode, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ repository: string; enabled: boolean; prTrust: string }>).map((p) => [p.repository, p.enabled, p.prTrust]),
      [['team/app', true, 'everyone']],
    );
  });

  it('turns a signed push into an eval with statuses, and refuses a wrong signature', async () => {
    const commit = await commitJobs(repo.dir, { pushed: 'true' });
    assert.equal((await deliver(pushPayload(commit.sha), giteaSignature('not the secret', 'x'))).statusCode, 401);
    const reply = await deliver(pushPayload(commit.sha));
    assert.equal(reply.statusCode, 202, reply.body);
    const evaluation = await evalOf(commit.sha);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evaluation.id);
    const { rows } = await pipeline.db.pool.query('SELECT tree_hash FROM evaluations WHERE id = $1', [evaluation.id]);
    assert.equal(rows[0].tree_hash, commit.tree, 'the tree hash came from the Gitea API');
    assert.equal(lastStatus(commit.sha, 'harmonia-ci/nix-eval')?.state, 'success');
    assert.deepEqual(lastStatus(commit.sha, 'harmonia-ci/nix-build'), {
      sha: commit.sha, state: 'success', context: 'harmonia-ci/nix-build', description: '1/1 built', target_url: `https://ci.example.org/ci/evals/${evaluation.id}`,
    });
  });

  it('polls the default branch of a project with a poll interval, without any webhook', async () => {
    const commit = await commitJobs(repo.dir, { polled: 'true' });
    const enabled = await cli('projects', 'enable', 'team/app', '--poll-interval', '1m');
    assert.equal(enabled.exitCode, 0, enabled.stderr);
    const evaluation = await evalOf(commit.sha);
    assert.equal(evaluation.event, 'poll');
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evaluation.id);
    assert.equal(lastStatus(commit.sha, 'harmonia-ci/nix-build')?.state, 'success');
  });

  it('disables the project: the webhook is removed and polling stops', async () => {
    const disabled = await cli('projects', 'disable', 'team/app');
    assert.equal(disabled.exitCode, 0, disabled.stderr);
    assert.deepEqual(fake.hooks, []);
    const status = await eventually('the poll workflow closed', async () => {
      const description = await pipeline.client.workflow.getHandle('poll/team/app').describe();
      return description.status.name === 'RUNNING' ? undefined : description.status.name;
    });
    assert.equal(status, 'CANCELLED');
    const ignored = await deliver(pushPayload((await commitJobs(repo.dir, { late: 'true' })).sha));
    assert.equal(ignored.statusCode, 200);
  });

  it('made only requests that Gitea\'s API describes, with the token', () => {
    assert.deepEqual(fake.violations, []);
    assert.deepEqual(fake.requests.filter((r) => r.status === 401).map((r) => `${r.method} ${r.path}`), []);
  });
});
