/**
 * Forge deployments end to end: a push to GitHub (a fake GitHub checking every request against
 * the OpenAPI description) whose job is configured for deployment ends with a GitHub Deployment
 * of the pushed commit, and its statuses following the deployment on a real deploy agent:
 * in_progress while it is sent and activated, then success, or failure when the health check fails.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeployAgent } from '../../deploy/agent.ts';
import { startAgentServer, type AgentServer } from '../../deploy/agent-server.ts';
import { generateKey } from '../executor/helpers.ts';
import { daemonSocket, nonce, scratchDir } from '../protocol/helpers.ts';
import { commitJobs, enableRepository, eventually, startGitHubStack, type GitHubStack } from './support.ts';

const SECRET = 'a-shared-deploy-secret-for-forge-tests';

describe('GitHub deployments', () => {
  const dir = scratchDir('harmonia-forge-deployments-');
  const key = generateKey(`forge-deploy-${nonce()}`);
  const agents: AgentServer[] = [];
  let stack: GitHubStack;

  async function agent(environment: string, healthCheck: string): Promise<string> {
    const marker = join(dir, `${environment}-active`);
    const deployAgent = await DeployAgent.start({
      environment,
      secret: Buffer.from(SECRET),
      stateDir: join(dir, `${environment}-state`),
      profile: join(dir, `${environment}-profile`),
      activation: { kind: 'command', command: `echo "$1" > ${marker}; echo activated` },
      healthCheck: healthCheck.replaceAll('MARKER', marker),
      healthTimeoutMs: 5_000,
      stepTimeoutMs: 60_000,
      env: { ...process.env, NIX_REMOTE: `unix://${daemonSocket()}` },
    });
    const server = await startAgentServer(deployAgent, Buffer.from(SECRET), '127.0.0.1', 0);
    agents.push(server);
    return server.url;
  }

  before(async () => {
    await writeFile(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    const target = (environment: string, url: string): string => `
[[deployments]]
project = "octo-org/hello-flake"
environment = "${environment}"
ref = "refs/heads/main"
job = "ciJobs.${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux.system"
agent-url = "${url}"
secret-file = "${join(dir, 'secret')}"
cache-url = "http://127.0.0.1:9"
public-key = "${key.publicKeyText}"
timeout = "2m"
`;
    const config = join(dir, 'server.toml');
    await writeFile(
      config,
      target('production', await agent('production', 'test "$(cat MARKER)" = "$1"')) + target('canary', await agent('canary', 'echo unhealthy >&2; false')),
    );
    stack = await startGitHubStack({ env: { HARMONIA_CI_CONFIG: config } });
    await enableRepository(stack);
  });

  after(async () => {
    await stack?.close();
    for (const server of agents) await server.close();
  });

  it('creates a deployment of the pushed commit per environment, with statuses to its outcome, through a forge outage', async () => {
    const { fake, repo } = stack;
    const commit = await commitJobs(repo.dir, { system: 'true' }, { branch: 'main' });
    fake.faults.push({ prefix: `POST /repos/${repo.owner}/${repo.name}/deployments`, status: 502, message: 'Bad Gateway', times: 2 });
    assert.equal((await stack.deliver('push', await stack.pushPayload(commit.sha, commit.tree))).statusCode, 202);

    const ended = (environment: string) =>
      eventually(`the ${environment} deployment's final status`, async () => {
        const deployment = fake.deployments.find((d) => d.environment === environment);
        const last = deployment?.statuses.at(-1);
        return last && last.state !== 'in_progress' && last.state !== 'queued' ? deployment : undefined;
      });
    const production = await ended('production');
    assert.equal(production.ref, commit.sha);
    assert.equal(production.repo, `${repo.owner}/${repo.name}`);
    // Reports send the state as it is when they run: while the forge is down, in_progress may be overtaken by the outcome.
    assert.match(production.statuses.map((s) => s.state).join(' '), /^(in_progress )*success$/);
    assert.equal(production.statuses.at(-1)!.description, 'Active and healthy');
    assert.equal(production.statuses.at(-1)!.log_url, `http://ci.example.org/ci/projects/${repo.owner}/${repo.name}`);

    const canary = await ended('canary');
    assert.equal(canary.ref, commit.sha);
    assert.equal(canary.statuses.at(-1)!.state, 'failure');
    assert.match(canary.statuses.at(-1)!.description, /^(Rolled back|Failed)/);

    assert.equal(fake.deployments.length, 2, 'one forge deployment per environment, none created twice');
    // The forge hears of the outcome before the row records that it did.
    await eventually('the deployments record their forge states', async () => {
      const { rows } = await stack.pipeline.db.pool.query<{ environment: string; forge_state: string | null }>(
        'SELECT environment, forge_state FROM deployments ORDER BY environment',
      );
      const states = rows.map((r) => `${r.environment} ${r.forge_state}`);
      return states.join() === 'canary failure,production success' ? states : undefined;
    });
  });

  it('made only requests that GitHub\'s OpenAPI description allows', () => {
    assert.deepEqual(stack.fake.violations, []);
    assert.ok(stack.fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/deployments')).some((r) => r.status === 502), 'the outage was seen');
  });
});
