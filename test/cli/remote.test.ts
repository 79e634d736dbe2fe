/**
 * `harmonia-ci login <url>` and the commands that then talk to a remote server over HTTP with the
 * stored token: a real API (test database, the runner's Temporal, a fake GitHub for rights)
 * listening on a port, and `harmonia-ci` run as a subprocess with its own config directory and
 * no database or Temporal of its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { nodeWorkflowId, refWorkflowId } from '../../workflows/definitions.ts';
import { whoAmI } from '../../cli/commands/login.ts';
import { remoteApi } from '../../cli/operator.ts';
import { OPERATOR, startAccessStack, type AccessStack } from '../api/auth-support.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');

describe('the command line against a remote server', () => {
  let stack: AccessStack;
  let url: string;
  let home: string;
  const node = `builder-${randomUUID().slice(0, 8)}`;

  /** Runs `harmonia-ci` with nothing configured but its home, `input` on standard input. */
  const run = (args: string[], input = '', env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, 'config'), HARMONIA_CI_STATE_DIR: join(home, 'state'), ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });
  const tokenOf = async (login: string, scope: 'read' | 'write' | 'admin'): Promise<string> => (await stack.bearer(login, scope)).authorization!.slice('Bearer '.length);

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'remote-cli-'));
    stack = await startAccessStack();
    await stack.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(stack.app.server.address() as AddressInfo).port}`;
    await stack.database.pool.query(`INSERT INTO nodes (name, systems, max_jobs) VALUES ($1, '{x86_64-linux}', 2)`, [node]);
  });

  after(async () => {
    await stack?.temporal.workflow.getHandle(nodeWorkflowId(node)).terminate('test over').catch(() => undefined);
    await stack?.close();
    await rm(home, { recursive: true, force: true });
  });

  it('refuses a token the server does not know, and stores a good one readable by its owner only', async () => {
    await assert.rejects(whoAmI(url, `hci_${'x'.repeat(43)}`), new RegExp(`${url} does not accept this token .*/ci/settings/tokens`));
    const token = await tokenOf(OPERATOR, 'admin');
    const login = await run(['login', `${url}/`], `${token}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, new RegExp(`logged in to ${url} as github:${OPERATOR} \\(token scope admin, operator\\)`));
    const file = join(home, 'config', 'harmonia-ci', 'credentials.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(home, 'config', 'harmonia-ci'))).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { default: url, servers: { [url]: { token, user: `github:${OPERATOR}` } } });
  });

  it('acts through the API with the stored token, as the person it belongs to, and shows the audit', async () => {
    // No database or Temporal configured: the last login's server, over HTTP, with the signal the CLI would send.
    const drained = await run(['drain', node]);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, new RegExp(`${node}: draining`));
    const history = await stack.temporal.workflow.getHandle(nodeWorkflowId(node)).fetchHistory();
    const signals = (history.events ?? []).flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? []);
    assert.deepEqual(signals, ['drain']);

    const status = await run(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /acme\/open/);
    assert.match(status.stdout, /acme\/secret/, 'the token says who asks: the operator reads the private project');
    assert.match(status.stdout, new RegExp(`recent actions\\n.*WHO.*\\n.*github:${OPERATOR}\\s+token:\\d+\\s+127\\.0\\.0\\.1\\s+node\\.drain\\s+${node}`));
  });

  it('re-evaluates a ref through the API, by the latest eval of that ref', async () => {
    const branch = `remote-${randomUUID().slice(0, 8)}`;
    await stack.database.pool.query(
      `INSERT INTO evaluations (project_id, commit_sha, ref, status, finished_at) SELECT id, $1, $2, 'succeeded', now() FROM projects WHERE name = 'acme/open'`,
      ['c'.repeat(40), `refs/heads/${branch}`],
    );
    const ref = refWorkflowId('acme/open', `refs/heads/${branch}`);
    // Stands in for the ref's workflow: it only has to receive the signal.
    const handle = await stack.temporal.workflow.start('refWorkflow', { workflowId: ref, taskQueue: `idle-${randomUUID()}`, args: [] });
    try {
      const result = await run(['re-evaluate', 'acme/open', branch]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`asked ${ref.replace(/[/]/g, '\\/')} to evaluate its latest commit again`));
      const history = await handle.fetchHistory();
      assert.deepEqual((history.events ?? []).flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? []), ['re-evaluate']);
      const unknown = await run(['re-evaluate', 'acme/open', 'no-such-branch']);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /acme\/open has no eval of refs\/heads\/no-such-branch to repeat/);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });

  it('acts as nobody without a login, and says how to log in', async () => {
    await assert.rejects(remoteApi(url, undefined).post(`/api/evals/${stack.evals.public}/cancel`), /\(401\): log in .*; run `harmonia-ci login http:\/\/127\.0\.0\.1:\d+`/);
  });
});
