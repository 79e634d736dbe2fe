/**
 * Deployments as workflows, through the whole pipeline (real Temporal, PostgreSQL, nix-daemon):
 * an eval whose configured job succeeds on the configured ref starts `deploy/<project>/<env>`,
 * which sends the agent (a real DeployAgent on a real listener, activating into a marker file) a
 * signed request and records its report. An environment that needs approval does nothing until
 * the `approve` signal, and a newer deployment supersedes the one waiting.
 *
 * HARMONIA_CI_CAPTURE_DEPLOY_HISTORY=1 saves the approved environment's history for the replay test.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { renderDeploymentsPanel } from '../../api/views/deployments.ts';
import { DeployAgent } from '../../deploy/agent.ts';
import { listProjectDeployments } from '../../queries/deployments.ts';
import { startAgentServer, type AgentServer } from '../../deploy/agent-server.ts';
import { approveSignal, deployWorkflowId } from '../../workflows/definitions.ts';
import { generateKey } from '../executor/helpers.ts';
import { daemonSocket, nonce, scratchDir } from '../protocol/helpers.ts';
import { startPipeline, waitUntil, writeJobset, type Pipeline } from '../pipeline/harness.ts';

const SECRET = 'a-shared-deploy-secret-0123456789';

interface Row {
  id: string;
  environment: string;
  store_path: string;
  status: string;
  approved_by: string | null;
  reason: string | null;
  log: string | null;
}

describe('deployments as workflows', () => {
  const dir = scratchDir('harmonia-deploy-workflow-');
  const jobsDir = scratchDir('harmonia-deploy-jobs-');
  const jobset = join(jobsDir, 'deploy-jobs.nix');
  // As ensureLocalProject names the project of a local path.
  const project = `local/${basename(jobset).replace(/[^A-Za-z0-9._-]/g, '-')}-${createHash('sha256').update(jobset).digest('hex').slice(0, 8)}`;
  const key = generateKey(`deploy-wf-${nonce()}`);
  const agents: AgentServer[] = [];
  const markers = { staging: join(dir, 'staging-active'), production: join(dir, 'production-active') };
  let pipeline: Pipeline;

  async function agentFor(environment: 'staging' | 'production'): Promise<string> {
    const agent = await DeployAgent.start({
      environment,
      secret: Buffer.from(SECRET),
      stateDir: join(dir, `${environment}-state`),
      profile: join(dir, `${environment}-profile`),
      activation: { kind: 'command', command: `echo "$1" > ${markers[environment]}; echo activated` },
      healthCheck: `test "$(cat ${markers[environment]})" = "$1"`,
      healthTimeoutMs: 20_000,
      stepTimeoutMs: 60_000,
      env: { ...process.env, NIX_REMOTE: `unix://${daemonSocket()}` },
    });
    const server = await startAgentServer(agent, Buffer.from(SECRET), '127.0.0.1', 0);
    agents.push(server);
    return server.url;
  }

  async function rows(): Promise<Row[]> {
    const { rows: found } = await pipeline.db.pool.query<Row>(
      'SELECT id::text, environment, store_path, status, approved_by, reason, log FROM deployments ORDER BY id',
    );
    return found;
  }

  async function evaluate(): Promise<string> {
    await writeJobset(jobsDir, { system: { script: 'echo a-system' }, other: {} }, { nonce: nonce(), file: basename(jobset) });
    const summary = await pipeline.run(jobset);
    return summary.jobs.find((job) => job.attr === 'system')!.outputs.out!;
  }

  before(async () => {
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    const target = (environment: string, url: string, approval: boolean): string => `
[[deployments]]
project = "${project}"
environment = "${environment}"
ref = "refs/heads/local"
job = "system"
agent-url = "${url}"
secret-file = "${join(dir, 'secret')}"
cache-url = "http://127.0.0.1:9"
public-key = "${key.publicKeyText}"
approval = ${approval}
timeout = "2m"
`;
    const config = join(dir, 'server.toml');
    await writeFile(config, target('staging', await agentFor('staging'), false) + target('production', await agentFor('production'), true));
    pipeline = await startPipeline({ env: { HARMONIA_CI_CONFIG: config } });
  });

  after(async () => {
    await pipeline?.close();
    for (const agent of agents) await agent.close();
  });

  it('deploys a succeeded job to its environment, and waits for approval where it is required', async () => {
    const first = await evaluate();
    await waitUntil(async () => (await rows()).some((row) => row.environment === 'staging' && row.status === 'succeeded'), 'the staging deployment succeeded');
    const staging = (await rows()).find((row) => row.environment === 'staging')!;
    assert.equal(staging.store_path, first);
    assert.equal(readFileSync(markers.staging, 'utf8').trim(), first);
    assert.match(staging.log ?? '', /activated/);

    await waitUntil(async () => (await rows()).some((row) => row.environment === 'production' && row.status === 'awaiting-approval'), 'production awaits approval');
    assert.equal(existsSync(markers.production), false, 'nothing is deployed before approval');

    // A newer success supersedes the deployment still waiting for approval.
    const second = await evaluate();
    await waitUntil(async () => {
      const production = (await rows()).filter((row) => row.environment === 'production');
      return production.length === 2 && production[0]!.status === 'superseded' && production[1]!.status === 'awaiting-approval';
    }, 'the first production deployment is superseded');
    assert.equal(existsSync(markers.production), false);

    await pipeline.client.workflow.getHandle(deployWorkflowId(project, 'production')).signal(approveSignal, { by: 'alice' });
    await waitUntil(async () => (await rows()).some((row) => row.environment === 'production' && row.status === 'succeeded'), 'production deployed after approval');
    const approved = (await rows()).find((row) => row.environment === 'production' && row.status === 'succeeded')!;
    assert.equal(approved.store_path, second);
    assert.equal(approved.approved_by, 'alice');
    assert.equal(readFileSync(markers.production, 'utf8').trim(), second);

    await waitUntil(async () => (await rows()).filter((row) => row.environment === 'staging' && row.status === 'succeeded').length === 2, 'staging deployed the second path');
    assert.equal(readFileSync(markers.staging, 'utf8').trim(), second);
    // The project page shows every environment's deployments, newest first, with who approved.
    const listed = await listProjectDeployments(pipeline.db.pool, project);
    assert.deepEqual(
      listed.map((d) => `${d.environment} ${d.status} ${d.storePath === second ? 'second' : 'first'}`).sort(),
      ['production succeeded second', 'production superseded first', 'staging succeeded first', 'staging succeeded second'],
    );
    assert.equal(listed[0]!.storePath, second, 'newest first');
    const panel = String(renderDeploymentsPanel(listed));
    assert.match(panel, /alice/);
    assert.match(panel, /superseded/);
    assert.ok(panel.includes(second.slice('/nix/store/'.length + 32)));

    if (process.env.HARMONIA_CI_CAPTURE_DEPLOY_HISTORY) {
      const history = await pipeline.client.workflow.getHandle(deployWorkflowId(project, 'production')).fetchHistory();
      const file = fileURLToPath(new URL('../replay/histories/deploy-approved.json', import.meta.url));
      writeFileSync(file, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
    }
  });
});
