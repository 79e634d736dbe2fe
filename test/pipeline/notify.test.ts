/**
 * Outgoing webhooks through the whole pipeline (real Temporal, PostgreSQL, nix-daemon, a real
 * deploy agent): a receiver on a real listener verifies each delivery's HMAC-SHA256 signature
 * with its own secret and sees eval-finished, build-failed and deployment-finished for one push;
 * a receiver that answers 503 twice gets the delivery once it recovers, under the same delivery id.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeployAgent } from '../../deploy/agent.ts';
import { startAgentServer, type AgentServer } from '../../deploy/agent-server.ts';
import { generateKey } from '../executor/helpers.ts';
import { daemonSocket, nonce, scratchDir } from '../protocol/helpers.ts';
import { startPipeline, waitUntil, writeJobset, type Pipeline } from './harness.ts';

const HOOK_SECRET = 'a-webhook-secret-only-the-receiver-knows';
const DEPLOY_SECRET = 'a-shared-deploy-secret-for-notify-tests';

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  /** The signature header matched the HMAC-SHA256 of the raw body under HOOK_SECRET. */
  verified: boolean;
}

/** A webhook receiver that records what it is sent, answering `failFirst` requests with 503. */
async function receiver(failFirst = 0): Promise<{ url: string; received: Received[]; attempts: number; server: Server }> {
  const state = { received: [] as Received[], attempts: 0 };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      state.attempts++;
      if (state.attempts <= failFirst) {
        response.writeHead(503).end('down for maintenance');
        return;
      }
      const raw = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', HOOK_SECRET).update(raw).digest('hex')}`);
      const given = Buffer.from(String(request.headers['x-harmonia-ci-signature-256'] ?? ''));
      const verified = given.length === expected.length && timingSafeEqual(given, expected);
      state.received.push({ headers: request.headers, body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, verified });
      response.writeHead(verified ? 204 : 401).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server });
}

describe('notifications', () => {
  const dir = scratchDir('harmonia-notify-');
  const jobsDir = scratchDir('harmonia-notify-jobs-');
  const jobset = join(jobsDir, 'notify-jobs.nix');
  // As ensureLocalProject names the project of a local path.
  const project = `local/${basename(jobset).replace(/[^A-Za-z0-9._-]/g, '-')}-${createHash('sha256').update(jobset).digest('hex').slice(0, 8)}`;
  const key = generateKey(`notify-${nonce()}`);
  let pipeline: Pipeline;
  let agent: AgentServer;
  let steady: Awaited<ReturnType<typeof receiver>>;
  let flaky: Awaited<ReturnType<typeof receiver>>;

  before(async () => {
    steady = await receiver();
    flaky = await receiver(2);
    const marker = join(dir, 'active');
    const deployAgent = await DeployAgent.start({
      environment: 'production',
      secret: Buffer.from(DEPLOY_SECRET),
      stateDir: join(dir, 'agent-state'),
      profile: join(dir, 'agent-profile'),
      // The agent appends the path as an argument: `echo activated` takes it.
      activation: { kind: 'command', command: `echo "$1" > ${marker}; echo activated` },
      healthCheck: `test "$(cat ${marker})" = "$1"`,
      healthTimeoutMs: 10_000,
      stepTimeoutMs: 60_000,
      env: { ...process.env, NIX_REMOTE: `unix://${daemonSocket()}` },
    });
    agent = await startAgentServer(deployAgent, Buffer.from(DEPLOY_SECRET), '127.0.0.1', 0);
    await writeFile(join(dir, 'deploy-secret'), `${DEPLOY_SECRET}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'hook-secret'), `${HOOK_SECRET}\n`, { mode: 0o600 });
    const config = join(dir, 'server.toml');
    await writeFile(
      config,
      `
[[deployments]]
project = "${project}"
environment = "production"
ref = "refs/heads/local"
job = "system"
agent-url = "${agent.url}"
secret-file = "${join(dir, 'deploy-secret')}"
cache-url = "http://127.0.0.1:9"
public-key = "${key.publicKeyText}"
timeout = "2m"

[[notifications]]
project = "${project}"
url = "${steady.url}"
secret-file = "${join(dir, 'hook-secret')}"

[[notifications]]
project = "${project}"
url = "${flaky.url}"
secret-file = "${join(dir, 'hook-secret')}"
events = ["eval-finished"]

[[notifications]]
project = "some/other-project"
url = "${steady.url}"
secret-file = "${join(dir, 'hook-secret')}"
`,
    );
    pipeline = await startPipeline({ env: { HARMONIA_CI_CONFIG: config, HARMONIA_CI_API_PUBLIC_URL: 'http://ci.example.org' } });
  });

  after(async () => {
    await pipeline?.close();
    await agent?.close();
    for (const r of [steady, flaky]) await new Promise((resolve) => r?.server.close(resolve));
  });

  it('signs and sends eval-finished, build-failed and deployment-finished, and retries a receiver until it recovers', async () => {
    await writeJobset(jobsDir, { system: { script: 'echo a-system' }, broken: { fail: true } }, { nonce: nonce(), file: basename(jobset) });
    const summary = await pipeline.run(jobset);
    const system = summary.jobs.find((job) => job.attr === 'system')!.outputs.out!;
    const events = () => steady.received.map((r) => r.body.event).sort();
    await waitUntil(async () => events().length === 3, 'three notifications at the steady receiver');
    assert.deepEqual(events(), ['build-failed', 'deployment-finished', 'eval-finished']);

    for (const delivery of steady.received) {
      assert.ok(delivery.verified, `${String(delivery.body.event)} is signed with the hook's secret`);
      assert.equal(delivery.headers['x-harmonia-ci-delivery'], delivery.body.id);
      assert.equal(delivery.headers['x-harmonia-ci-event'], delivery.body.event);
      assert.equal(delivery.headers['x-harmonia-ci-timestamp'], delivery.body.timestamp);
      assert.ok(Math.abs(Date.parse(String(delivery.body.timestamp)) - Date.now()) < 120_000, 'a fresh timestamp');
      assert.equal(delivery.body.project, project);
    }
    const byEvent = Object.fromEntries(steady.received.map((r) => [String(r.body.event), r.body]));
    const evaluation = byEvent['eval-finished']!.eval as Record<string, unknown>;
    assert.equal(evaluation.status, 'succeeded');
    assert.equal(evaluation.ref, 'refs/heads/local');
    assert.equal(evaluation.url, `http://ci.example.org/ci/evals/${String(evaluation.id)}`);
    assert.deepEqual(byEvent['eval-finished']!.builds, { total: 2, succeeded: 1, cached: 0, failed: 1, timedOut: 0, depFailed: 0, cancelled: 0 });
    const build = byEvent['build-failed']!.build as Record<string, unknown>;
    assert.deepEqual(build.attrs, ['broken']);
    assert.equal(build.status, 'failed');
    assert.equal((byEvent['build-failed']!.eval as Record<string, unknown>).id, evaluation.id);
    const deployment = byEvent['deployment-finished']!.deployment as Record<string, unknown>;
    assert.equal(deployment.status, 'succeeded', String(deployment.reason));
    assert.equal(deployment.environment, 'production');
    assert.equal(deployment.storePath, system);

    await waitUntil(async () => flaky.received.length === 1, 'the flaky receiver got the delivery after recovering', 90_000);
    assert.equal(flaky.attempts, 3, 'two refused attempts, then the delivery');
    assert.equal(flaky.received[0]!.body.event, 'eval-finished');
    assert.ok(flaky.received[0]!.verified);
    assert.equal(steady.received.length, 3, 'no repeats, and nothing from another project');
  });
});
