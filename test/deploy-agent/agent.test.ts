/**
 * `harmonia-ci deploy-agent` end to end: a real agent process on a "host" with an empty store of
 * its own (a mount namespace, as in the fleet drills) deploys test "systems" built in the test
 * daemon's store and served by `cache serve --store`. A system's activation writes a marker, its
 * health check reads it; one variant's health check fails and must be rolled back. Forged, stale
 * and replayed requests are refused; a wrong public key leaves nothing realised.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCacheServer, type CacheServer } from '../../api/cache-server.ts';
import { StoreCacheSource } from '../../cache/store-source.ts';
import { parseSecretKey } from '../../daemon/core/signing.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { AgentRefused, DeployAgentClient } from '../../deploy/client.ts';
import { newNonce, sealMessage, SIGNATURE_HEADER, type DeployReport } from '../../deploy/protocol.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { generateKey } from '../executor/helpers.ts';
import { namespaceHost, type NamespaceHost } from '../helpers/namespace-host.ts';
import { daemonSocket, instantiate, nonce, realise, scratchDir } from '../protocol/helpers.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');
const SECRET = Buffer.from('a-test-secret-of-some-length-0123456789');

/** A test system: `activate` records the path it activates in `marker`; `health` checks it is the one recorded. */
function systemDrv(n: string, tag: string, marker: string, healthy: boolean): string {
  return `sh "deploy-system-${n}-${tag}" ''
    PATH=/usr/bin:/bin
    mkdir -p $out/bin
    printf '#!/bin/sh\\necho activating ${tag}\\necho %s > ${marker}\\n' "$out" > $out/bin/activate
    printf '#!/bin/sh\\ntest "$(cat ${marker})" = %s && ${healthy ? 'true' : 'false'}\\n' "$out" > $out/bin/health
    chmod +x $out/bin/activate $out/bin/health
  ''`;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('deploy agent', () => {
  const n = nonce();
  const dir = scratchDir('harmonia-deploy-agent-');
  const marker = join(dir, 'marker');
  const stateDir = join(dir, 'agent-state');
  const key = generateKey(`deploy-cache-${n}`);
  const wrongKey = generateKey(`wrong-${n}`);
  let systems: Record<'first' | 'second' | 'sick' | 'slow', string>;
  let pool: DaemonPool;
  let cache: CacheServer;
  let cacheUrl: string;
  let host: NamespaceHost;
  let agent: ChildProcess | undefined;
  let agentUrl: string;
  let client: DeployAgentClient;

  async function startAgent(): Promise<void> {
    const wrapped = host.wrap(process.execPath, [
      CLI, 'deploy-agent', '--environment', 'test', '--secret-file', join(dir, 'secret'), '--state-dir', stateDir,
      '--port', '0', '--activate', '"$1"/bin/activate', '--health-check', '"$1"/bin/health', '--health-timeout', '20s',
    ]);
    agent = spawn(wrapped.file, wrapped.args, { env: { ...process.env, ...host.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    agent.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    agentUrl = await new Promise<string>((resolve, reject) => {
      agent!.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
        if (url) resolve(url);
      });
      agent!.once('exit', (code) => reject(new Error(`the agent exited with ${code}: ${output}`)));
    });
    client = new DeployAgentClient(agentUrl, SECRET);
  }

  async function stopAgent(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!agent || agent.exitCode !== null) return;
    const exited = once(agent, 'exit');
    process.kill(-agent.pid!, signal);
    await exited;
  }

  async function deploy(storePath: string, publicKey = key.publicKeyText): Promise<DeployReport> {
    const deploymentId = `test-${newNonce()}`;
    const accepted = await client.deploy({ deploymentId, project: 'p', environment: 'test', storePath, cacheUrl, publicKey });
    assert.equal(accepted?.outcome, 'running', accepted?.reason);
    let report: DeployReport | undefined;
    await until(`deployment ${deploymentId}`, async () => {
      report = await client.status(deploymentId);
      return report !== undefined && report.outcome !== 'running';
    });
    return report!;
  }

  const profilePath = (): string | undefined => (existsSync(join(stateDir, 'profile')) ? realpathSync(join(stateDir, 'profile')) : undefined);

  before(async () => {
    writeFileSync(join(dir, 'secret'), `${SECRET.toString()}\n`);
    const drvs = instantiate(
      `{
        first = ${systemDrv(n, 'first', marker, true)};
        second = ${systemDrv(n, 'second', marker, true)};
        sick = ${systemDrv(n, 'sick', marker, false)};
        slow = sh "deploy-system-${n}-slow" ''
          PATH=/usr/bin:/bin
          mkdir -p $out/bin
          printf '#!/bin/sh\\necho %s > ${marker}\\nsleep 30\\n' "$out" > $out/bin/activate
          printf '#!/bin/sh\\ntrue\\n' > $out/bin/health
          chmod +x $out/bin/activate $out/bin/health
        '';
      }`,
      ['first', 'second', 'sick', 'slow'],
    );
    systems = {
      first: realise(drvs.first!)[0]!,
      second: realise(drvs.second!)[0]!,
      sick: realise(drvs.sick!)[0]!,
      slow: realise(drvs.slow!)[0]!,
    };
    pool = new DaemonPool({ socketPath: daemonSocket() });
    const store = new StoreCacheSource({ pool, secretKey: parseSecretKey(readFileSync(key.secretKeyFile, 'utf8')) });
    cache = await startCacheServer({ store, host: '127.0.0.1', port: 0 });
    cacheUrl = `http://127.0.0.1:${cache.port}`;
    host = await namespaceHost(join(dir, 'host'));
    await startAgent();
  });

  after(async () => {
    await stopAgent();
    await cache?.close();
    await pool?.close();
  });

  it('deploys a system: realised in the host store from the cache, activated, healthy', async () => {
    const report = await deploy(systems.first);
    assert.equal(report.outcome, 'succeeded', `${report.reason}\n${report.log}`);
    assert.equal(readFileSync(marker, 'utf8').trim(), systems.first);
    assert.equal(profilePath(), systems.first);
    assert.ok(existsSync(join(host.root, systems.first, 'bin', 'activate')), 'the path is in the host store');
    assert.match(report.log, /activating first/);
  });

  it('refuses the path that is already active', async () => {
    const report = await client.deploy({ deploymentId: `again-${n}`, project: 'p', environment: 'test', storePath: systems.first, cacheUrl, publicKey: key.publicKeyText });
    assert.equal(report?.outcome, 'refused');
    assert.match(report?.reason ?? '', /already the active path/);
  });

  it('a failing health check rolls back to the previous path and activates it again', async () => {
    const report = await deploy(systems.sick);
    assert.equal(report.outcome, 'rolled-back', report.log);
    assert.match(report.reason ?? '', /exited with 1/);
    assert.equal(profilePath(), systems.first);
    assert.equal(readFileSync(marker, 'utf8').trim(), systems.first);
  });

  it('realises only with the key it was given: a cache signed by another key fails, nothing changes', async () => {
    const report = await deploy(systems.second, wrongKey.publicKeyText);
    assert.equal(report.outcome, 'failed');
    assert.match(report.log, /not signed by any of the keys in .trusted-public-keys./);
    assert.equal(existsSync(join(host.root, systems.second)), false);
    assert.equal(profilePath(), systems.first);
  });

  it('refuses a forged signature, a stale time and a replayed nonce', async () => {
    const post = (body: string, signature: string): Promise<Response> =>
      fetch(`${agentUrl}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature }, body });
    const request = { kind: 'deploy', deploymentId: `forged-${n}`, project: 'p', environment: 'test', storePath: systems.second, cacheUrl, publicKey: key.publicKeyText };
    const forged = sealMessage(Buffer.from('another-secret-of-enough-length'), { ...request, time: Date.now(), nonce: newNonce() } as never);
    const answer = await post(forged.body, forged.signature);
    assert.equal(answer.status, 401);
    assert.match(await answer.text(), /does not match/);
    const stale = sealMessage(SECRET, { ...request, time: Date.now() - 3_600_000, nonce: newNonce() } as never);
    const staleAnswer = await post(stale.body, stale.signature);
    assert.equal(staleAnswer.status, 401);
    assert.match(await staleAnswer.text(), /outside the/);
    const status = sealMessage(SECRET, { kind: 'status', deploymentId: `nothing-${n}`, time: Date.now(), nonce: newNonce() });
    const statusPost = (): Promise<Response> =>
      fetch(`${agentUrl}/status`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: status.signature }, body: status.body });
    assert.equal((await statusPost()).status, 404);
    const replayed = await statusPost();
    assert.equal(replayed.status, 401);
    assert.match(await replayed.text(), /replayed/);
    await assert.rejects(new DeployAgentClient(agentUrl, Buffer.from('not-the-secret-at-all-0000')).status('x'), AgentRefused);
    assert.equal(profilePath(), systems.first);
  });

  it('an agent killed mid-activation rolls back when it starts again', async () => {
    const deploymentId = `killed-${n}`;
    const accepted = await client.deploy({ deploymentId, project: 'p', environment: 'test', storePath: systems.slow, cacheUrl, publicKey: key.publicKeyText });
    assert.equal(accepted?.outcome, 'running');
    await until('the slow activation', async () => readFileSync(marker, 'utf8').trim() === systems.slow);
    await stopAgent('SIGKILL');
    await startAgent();
    const report = await client.status(deploymentId);
    assert.equal(report?.outcome, 'rolled-back');
    assert.match(report?.reason ?? '', /restarted/);
    assert.equal(profilePath(), systems.first);
    assert.equal(readFileSync(marker, 'utf8').trim(), systems.first);
  });
});
