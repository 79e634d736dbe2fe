/**
 * Actions over HTTP and their buttons: each needs write access on the project, reaches the
 * workflow the command line signals (on the runner's real Temporal: a workflow started on a task
 * queue no worker polls stays open and records the signals it receives), and is audited.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { evalWorkflowId, nodeWorkflowId, refWorkflowId } from '../../workflows/definitions.ts';
import { cookieHeader, csrfOf, OPERATOR, startAccessStack, type AccessStack } from './auth-support.ts';

describe('actions over HTTP and in the dashboard', () => {
  let stack: AccessStack;
  const started: string[] = [];

  /** Opens a workflow with this id that no worker runs, so that signals to it are only recorded. */
  const placeholder = async (workflowId: string): Promise<void> => {
    await stack.temporal.workflow.start('refWorkflow', { workflowId, taskQueue: `idle-${randomUUID()}`, args: [] });
    started.push(workflowId);
  };
  const signalsOf = async (workflowId: string): Promise<string[]> => {
    const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    return (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes?.signalName ? [e.workflowExecutionSignaledEventAttributes.signalName] : []));
  };

  before(async () => {
    stack = await startAccessStack();
    stack.fake.permissions.set('writer', 'write');
    stack.fake.permissions.set('reader', 'read');
  });

  after(async () => {
    for (const id of started) await stack.temporal.workflow.getHandle(id).terminate('test over').catch(() => undefined);
    await stack?.close();
  });

  it('refuses actions without write access, and hides private projects from those who cannot read them', async () => {
    const url = `/api/evals/${stack.evals.public}/re-evaluate`;
    assert.equal((await stack.app.inject({ method: 'POST', url })).statusCode, 401);
    const reader = await stack.app.inject({ method: 'POST', url, headers: await stack.bearer('reader', 'admin') });
    assert.equal(reader.statusCode, 403);
    assert.match(reader.json<{ error: string }>().error, /github:reader holds read on acme\/open; this needs write/);
    const privateEval = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.private}/cancel`, headers: await stack.bearer('stranger', 'write') });
    assert.equal(privateEval.statusCode, 404, 'the forge gives the stranger nothing on the private repository: it is unknown to them');
  });

  it('sends the CLI\'s signals to the CLI\'s workflows and audits each', async () => {
    const writer = await stack.bearer('writer', 'write');
    const ref = refWorkflowId('acme/open', 'refs/heads/main');
    const missing = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.public}/re-evaluate`, headers: writer });
    assert.equal(missing.statusCode, 409);
    assert.match(missing.json<{ error: string }>().error, new RegExp(`no running workflow ${ref}`));

    await placeholder(ref);
    const reEvaluated = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.public}/re-evaluate`, headers: writer });
    assert.equal(reEvaluated.statusCode, 200, reEvaluated.body);
    const nothingFailed = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.public}/rebuild-failed`, headers: writer });
    assert.equal(nothingFailed.statusCode, 409);
    assert.match(nothingFailed.json<{ error: string }>().error, /no failed builds/);
    assert.deepEqual(await signalsOf(ref), ['re-evaluate']);

    await stack.database.pool.query(`UPDATE evaluations SET status = 'running', error = NULL, finished_at = NULL WHERE id = $1`, [stack.evals.public]);
    await placeholder(evalWorkflowId(stack.evals.public));
    const cancelled = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.public}/cancel`, headers: writer });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.deepEqual(await signalsOf(evalWorkflowId(stack.evals.public)), ['cancel']);

    const { rows } = await stack.database.pool.query<{ actor: string; via: string; action: string; project: string; remote: string }>(
      `SELECT actor, via, action, project, remote FROM audit_log WHERE action LIKE 'eval.%' ORDER BY id`,
    );
    assert.deepEqual(rows.map((r) => [r.actor, r.action, r.project]), [
      ['github:writer', 'eval.re-evaluate', 'acme/open'],
      ['github:writer', 'eval.cancel', 'acme/open'],
    ]);
    assert.ok(rows.every((r) => /^token:\d+$/.test(r.via) && r.remote !== ''));
  });

  it('shows buttons to people with write access only, and takes a press with its CSRF token', async () => {
    const page = `/ci/evals/${stack.evals.public}`;
    const anonymous = await stack.app.inject({ method: 'GET', url: page });
    assert.doesNotMatch(anonymous.body, /id="actions"/);
    const reader = await stack.app.inject({ method: 'GET', url: page, headers: { cookie: await stack.logIn('reader') } });
    assert.doesNotMatch(reader.body, /id="actions"/);

    const cookie = await stack.logIn('writer');
    const shown = await stack.app.inject({ method: 'GET', url: page, headers: { cookie } });
    assert.match(shown.body, new RegExp(`<form class="action" method="post" action="/api/evals/${stack.evals.public}/re-evaluate">`));
    const jar = cookieHeader(shown, cookie);
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: jar };
    const forged = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.public}/re-evaluate`, headers: form, payload: '' });
    assert.equal(forged.statusCode, 403);
    const pressed = await stack.app.inject({ method: 'POST', url: `/api/evals/${stack.evals.public}/re-evaluate`, headers: form, payload: `_csrf=${encodeURIComponent(csrfOf(shown.body))}` });
    assert.equal(pressed.statusCode, 303, pressed.body);
    assert.equal(pressed.headers.location, page);
    const { rows } = await stack.database.pool.query<{ via: string }>(`SELECT via FROM audit_log WHERE action = 'eval.re-evaluate' ORDER BY id DESC LIMIT 1`);
    assert.equal(rows[0]?.via, 'session');
  });

  it('lets operators alone drain and undrain a builder', async () => {
    const node = `node-${randomUUID().slice(0, 8)}`;
    await stack.database.pool.query(`INSERT INTO nodes (name, systems, max_jobs) VALUES ($1, '{x86_64-linux}', 1)`, [node]);
    const url = `/api/nodes/${node}/drain`;
    assert.equal((await stack.app.inject({ method: 'POST', url })).statusCode, 401);
    stack.fake.permissions.set('owner', 'admin');
    assert.equal((await stack.app.inject({ method: 'POST', url, headers: await stack.bearer('owner', 'admin') })).statusCode, 403);
    assert.equal((await stack.app.inject({ method: 'POST', url: '/api/nodes/nowhere/drain', headers: await stack.bearer(OPERATOR, 'admin') })).statusCode, 404);
    const drained = await stack.app.inject({ method: 'POST', url, headers: await stack.bearer(OPERATOR, 'admin') });
    started.push(nodeWorkflowId(node));
    assert.equal(drained.statusCode, 200, drained.body);
    const undrained = await stack.app.inject({ method: 'POST', url: `/api/nodes/${node}/undrain`, headers: await stack.bearer(OPERATOR, 'admin') });
    assert.equal(undrained.statusCode, 200, undrained.body);
    assert.deepEqual((await signalsOf(nodeWorkflowId(node))).filter((name) => name === 'drain'), ['drain', 'drain']);
  });
});
