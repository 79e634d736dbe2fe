/**
 * Test material for the forge tests and drills: local git repositories holding a flake and a
 * `.harmonia-ci.toml`, real webhook payloads from @octokit/webhooks-examples adapted to them,
 * HMAC signatures made with test secrets, and a GitHub App stack (fake GitHub, pipeline, API).
 */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Pool } from 'pg';
import { buildApp } from '../../api/app.ts';
import { createToken } from '../../access/tokens.ts';
import { createLogger } from '../../lib/log.ts';
import { startPipeline, type Pipeline } from '../pipeline/harness.ts';
import { startFakeForge, type FakeForge } from './fake-forge.ts';

/** The machine's Nix system: the flake defines jobs for it only (pure evaluation has no currentSystem). */
export const SYSTEM = `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux`;

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { encoding: 'utf8' }).trim();
}

export interface Commit {
  sha: string;
  tree: string;
}

/**
 * A repository whose flake exposes its jobs only under `ciJobs`, which `.harmonia-ci.toml`
 * selects: a green run proves the file was read from the checked-out commit.
 */
export async function createFlakeRepo(dir: string, branch = 'main'): Promise<void> {
  await mkdir(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', branch);
  await writeFile(join(dir, '.harmonia-ci.toml'), 'attrs = ["ciJobs"]\n');
}

/**
 * Commits a flake whose `ciJobs.<system>` is the Nix expression `jobs` to `branch` (default: the
 * current one) and returns the commit and its tree.
 */
export async function commitFlake(dir: string, jobs: string, options: { branch?: string; message?: string } = {}): Promise<Commit> {
  if (options.branch) git(dir, 'checkout', '-q', '-B', options.branch);
  await writeFile(join(dir, 'flake.nix'), `{\n  outputs = { self }: {\n    ciJobs.${SYSTEM} = ${jobs};\n  };\n}\n`);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', options.message ?? 'jobs');
  return { sha: git(dir, 'rev-parse', 'HEAD'), tree: git(dir, 'rev-parse', 'HEAD^{tree}') };
}

/**
 * Commits a flake with the given jobs (shell scripts; a unique nonce makes each commit's
 * derivations new) to `branch` (default: the current one) and returns the commit and its tree.
 */
export async function commitJobs(dir: string, jobs: Record<string, string>, options: { branch?: string; nonce?: string } = {}): Promise<Commit> {
  const nonce = options.nonce ?? randomUUID();
  const attrs = Object.entries(jobs)
    .map(
      ([name, script]) =>
        `      ${name} = builtins.derivation { name = "${name}"; system = "${SYSTEM}"; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(`${script}; echo ${name} > $out`)} ]; nonce = "${nonce}"; };`,
    )
    .join('\n');
  return commitFlake(dir, `{\n${attrs}\n    }`, { ...(options.branch ? { branch: options.branch } : {}), message: `jobs ${nonce}` });
}

/** Points a ref (a PR head, `refs/pull/<n>/head`, as forges keep them) at a commit. */
export function setRef(dir: string, ref: string, sha: string): void {
  git(dir, 'update-ref', ref, sha);
}

type Json = Record<string, unknown>;
let examples: Map<string, Json[]> | undefined;

/** A copy of the first example of GitHub's `event` (with `action`) that has an installation. */
export async function githubExample(event: string, action?: string, fits: (example: Json) => boolean = () => true): Promise<Json> {
  if (!examples) {
    const require = createRequire(import.meta.url);
    const file = join(dirname(require.resolve('@octokit/webhooks-examples/package.json')), 'api.github.com', 'index.json');
    const index = JSON.parse(await readFile(file, 'utf8')) as Array<{ name: string; examples: Json[] }>;
    examples = new Map(index.map((entry) => [entry.name, entry.examples]));
  }
  const list = examples.get(event) ?? [];
  const candidates = list.filter((e) => (action === undefined || e.action === action) && fits(e));
  const example = candidates.find((e) => e.installation) ?? candidates[0];
  if (!example) throw new Error(`@octokit/webhooks-examples has no ${event} ${action ?? ''} example`);
  return structuredClone(example);
}

export interface TestRepository {
  owner: string;
  name: string;
  id: number;
  dir: string;
}

/** The example's repository fields pointed at a test repository. */
export function adaptRepository(payload: Json, repo: TestRepository, installationId?: number): Json {
  const repository = payload.repository as Json;
  Object.assign(repository, {
    id: repo.id,
    name: repo.name,
    full_name: `${repo.owner}/${repo.name}`,
    clone_url: `file://${repo.dir}`,
  });
  Object.assign(repository.owner as Json, { login: repo.owner, name: repo.owner });
  if (installationId !== undefined) payload.installation = { ...(payload.installation as Json), id: installationId };
  return payload;
}

/** GitHub's X-Hub-Signature-256 value. */
export function githubSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Gitea's X-Gitea-Signature value. */
export function giteaSignature(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A signed GitHub push of `sha` to `ref` of `owner/name` (forge id `id`), as `app.inject` options. */
export async function githubPushDelivery(
  secret: string,
  repo: { owner: string; name: string; id: number },
  options: { sha: string; deliveryId: string; ref?: string },
): Promise<{ method: 'POST'; url: string; headers: Record<string, string>; payload: string }> {
  const payload = await githubExample('push', undefined, (e) => e.head_commit !== null);
  Object.assign(payload, { ref: options.ref ?? 'refs/heads/main', after: options.sha });
  Object.assign(payload.head_commit as object, { id: options.sha, tree_id: 'e'.repeat(40) });
  Object.assign(payload.repository as object, { id: repo.id, name: repo.name });
  Object.assign((payload.repository as { owner: object }).owner, { login: repo.owner });
  const body = JSON.stringify(payload);
  return {
    method: 'POST',
    url: '/webhook/github',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': options.deliveryId,
      'x-hub-signature-256': githubSignature(secret, body),
    },
    payload: body,
  };
}

/** A GitHub App's webhooks and API against a fake GitHub, driving an in-process pipeline. */
export interface GitHubStack {
  pipeline: Pipeline;
  fake: FakeForge;
  app: FastifyInstance;
  /** The repository the app is installed on (a local git repository, not yet enabled as a project). */
  repo: TestRepository;
  secret: string;
  installation: number;
  /** Where the API listens, when started with `listen`. */
  url?: string;
  /** A push of `sha` to `ref`, from GitHub's example payload. */
  pushPayload(sha: string, tree: string, ref?: string): Promise<Json>;
  /** Delivers a webhook through `app.inject`, signed unless `signature` is given (null: none). */
  deliver(event: string, payload: unknown, options?: { delivery?: string; signature?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

const APP_ID = 4242;

/**
 * harmonia-ci as a GitHub App (JWTs checked against the app's public key, webhooks signed with a
 * test secret) on a fake GitHub that checks every request against the OpenAPI description, with
 * one repository `octo-org/hello-flake` holding `.harmonia-ci.toml`.
 */
export async function startGitHubStack(options: { env?: Record<string, string>; listen?: boolean } = {}): Promise<GitHubStack> {
  const secret = `whsec-${randomUUID()}`;
  const installation = 77;
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const fake = await startFakeForge({ kind: 'github', app: { id: APP_ID, publicKey: keys.publicKey, installationId: installation } });
  const secrets = await mkdtemp(join(tmpdir(), 'forge-secrets-'));
  await writeFile(join(secrets, 'webhook'), `${secret}\n`);
  await writeFile(join(secrets, 'app.pem'), keys.privateKey.export({ type: 'pkcs1', format: 'pem' }));
  const pipeline = await startPipeline({
    env: {
      HARMONIA_CI_FORGES_GITHUB_API_URL: fake.url,
      HARMONIA_CI_FORGES_GITHUB_APP_ID: String(APP_ID),
      HARMONIA_CI_FORGES_GITHUB_PRIVATE_KEY_FILE: join(secrets, 'app.pem'),
      HARMONIA_CI_FORGES_GITHUB_WEBHOOK_SECRET_FILE: join(secrets, 'webhook'),
      HARMONIA_CI_API_PUBLIC_URL: 'http://ci.example.org',
      ...options.env,
    },
  });
  const repo = { owner: 'octo-org', name: 'hello-flake', id: 5001, dir: join(pipeline.dir, 'hello-flake') };
  await createFlakeRepo(repo.dir);
  fake.addRepo({ ...repo, defaultBranch: 'main' });
  const app = buildApp({ config: pipeline.config, log: createLogger({ level: 'silent' }), deps: { pool: pipeline.db.pool, temporal: pipeline.client } });
  if (options.listen) await app.listen({ host: '127.0.0.1', port: 0 });
  else await app.ready();
  const address = app.server.address() as AddressInfo | null;

  return {
    pipeline,
    fake,
    app,
    repo,
    secret,
    installation,
    ...(options.listen && address ? { url: `http://127.0.0.1:${address.port}` } : {}),
    async pushPayload(sha, tree, ref = 'refs/heads/main') {
      const payload = adaptRepository(await githubExample('push', undefined, (e) => e.head_commit !== null), repo, installation);
      Object.assign(payload, { ref, after: sha, forced: false });
      Object.assign(payload.head_commit as object, { id: sha, tree_id: tree });
      return payload;
    },
    deliver(event, payload, deliverOptions = {}) {
      const body = JSON.stringify(payload);
      const signature = deliverOptions.signature === undefined ? githubSignature(secret, body) : deliverOptions.signature;
      return app.inject({
        method: 'POST',
        url: '/webhook/github',
        headers: {
          'content-type': 'application/json',
          'x-github-event': event,
          'x-github-delivery': deliverOptions.delivery ?? randomUUID(),
          ...(signature === null ? {} : { 'x-hub-signature-256': signature }),
        },
        payload: body,
      });
    },
    async close() {
      await app.close();
      await pipeline.close();
      await fake.close();
      await rm(secrets, { recursive: true, force: true });
    },
  };
}

/**
 * `Authorization` of an API token acting for a person the fake forge reports as admin of every
 * repository: what changing a project needs.
 */
export async function maintainerHeaders(pool: Pool, fake: FakeForge, forge: 'github' | 'gitea'): Promise<Record<string, string>> {
  fake.permissions.set('ci-maintainer', 'admin');
  const { token } = await createToken(pool, { forge, login: 'ci-maintainer', scope: 'admin', expiresAt: null });
  return { authorization: `Bearer ${token}` };
}

/** Installs the app (GitHub's `installation created`), waits for the repository, and enables it as a project. */
export async function enableRepository(stack: GitHubStack): Promise<void> {
  const { app, repo, pipeline } = stack;
  const installed = await stack.deliver('installation', { ...(await githubExample('installation', 'created')), installation: { id: stack.installation } });
  if (installed.statusCode !== 202) throw new Error(`the installation delivery was answered ${installed.statusCode}: ${installed.body}`);
  await eventually(`${repo.owner}/${repo.name} discovered`, async () => {
    const { rows } = await pipeline.db.pool.query('SELECT 1 FROM repositories WHERE name = $1', [repo.name]);
    return rows[0];
  });
  const headers = await maintainerHeaders(pipeline.db.pool, stack.fake, 'github');
  const enabled = await app.inject({ method: 'POST', url: `/api/projects/${repo.owner}/${repo.name}/enable`, headers, payload: { prTrust: 'collaborators' } });
  if (enabled.statusCode !== 200) throw new Error(`enabling ${repo.owner}/${repo.name} was answered ${enabled.statusCode}: ${enabled.body}`);
}

/** The last status the forge received for `sha` in `context`. */
export function lastStatus(fake: FakeForge, sha: string, context: string): FakeForge['statuses'][number] | undefined {
  return fake.statuses.filter((s) => s.sha === sha && s.context === context).at(-1);
}
