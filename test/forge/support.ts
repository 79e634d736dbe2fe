/**
 * Test material for the forge tests: local git repositories holding a flake and a
 * `.harmonia-ci.toml`, real webhook payloads from @octokit/webhooks-examples adapted to them,
 * and HMAC signatures made with test secrets.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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
 * Commits a flake with the given jobs (shell scripts; a unique nonce makes each commit's
 * derivations new) to `branch` (default: the current one) and returns the commit and its tree.
 */
export async function commitJobs(dir: string, jobs: Record<string, string>, options: { branch?: string; nonce?: string } = {}): Promise<Commit> {
  if (options.branch) git(dir, 'checkout', '-q', '-B', options.branch);
  const nonce = options.nonce ?? randomUUID();
  const attrs = Object.entries(jobs)
    .map(
      ([name, script]) =>
        `      ${name} = builtins.derivation { name = "${name}"; system = "${SYSTEM}"; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(`${script}; echo ${name} > $out`)} ]; nonce = "${nonce}"; };`,
    )
    .join('\n');
  await writeFile(join(dir, 'flake.nix'), `{\n  outputs = { self }: {\n    ciJobs.${SYSTEM} = {\n${attrs}\n    };\n  };\n}\n`);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', `jobs ${nonce}`);
  return { sha: git(dir, 'rev-parse', 'HEAD'), tree: git(dir, 'rev-parse', 'HEAD^{tree}') };
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
