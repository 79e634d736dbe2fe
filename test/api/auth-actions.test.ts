/**
 * Actions over HTTP and their buttons: each needs write access on the project, reaches the
 * workflow the command line signals (on the runner's real Temporal: a workflow started on a task
 * queue no worker polls stays open and records the signals it receives), and is audited.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { deployWorkflowId, evalWorkflowId, nodeWorkflowId, refWorkflowId } from '../../workflows/definitions.ts';
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

    // The nodes page: buttons for operators only, a press comes back to the page, the table follows a stream.
    const anonymous = await stack.app.inject({ method: 'GET', url: '/ci/nodes' });
    assert.equal(anonymous.statusCode, 200);
    assert.match(anonymous.body, new RegExp(`<tr id="node-${node}">`));
    assert.doesNotMatch(anonymous.body, /action="\/api\/nodes\//);
    const owner = await stack.app.inject({ method: 'GET', url: '/ci/nodes', headers: { cookie: await stack.logIn('owner') } });
    assert.doesNotMatch(owner.body, /action="\/api\/nodes\//);
    const cookie = await stack.logIn(OPERATOR);
    const page = await stack.app.inject({ method: 'GET', url: '/ci/nodes', headers: { cookie } });
    assert.match(page.body, new RegExp(`action="/api/nodes/${node}/drain"`));
    const jar = cookieHeader(page, cookie);
    const pressed = await stack.app.inject({
      method: 'POST',
      url: `/api/nodes/${node}/drain`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar },
      payload: `_csrf=${encodeURIComponent(csrfOf(page.body))}`,
    });
    assert.equal(pressed.statusCode, 303, pressed.body);
    assert.equal(pressed.headers.location, '/ci/nodes');

    const live = /data-live="([^"]+)"/.exec(page.body)![1]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'");
    await stack.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = stack.app.server.address() as AddressInfo;
    const abort = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}${live}`, { headers: { cookie: jar }, signal: abort.signal });
    assert.equal(response.status, 200);
    // The node workflow records the flag; here no coordinator runs it, so the row is set as it would.
    await stack.database.pool.query('UPDATE nodes SET draining = true WHERE name = $1', [node]);
    let seen = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body!) {
      seen += decoder.decode(chunk as Uint8Array, { stream: true });
      if (seen.includes('event: swap')) break;
    }
    abort.abort();
    const swap = JSON.parse(/data: (.*)/.exec(seen.slice(seen.indexOf('event: swap')))![1]!) as { nodes: string };
    assert.match(swap.nodes, new RegExp(`action="/api/nodes/${node}/undrain"`));
    assert.match(swap.nodes, />draining</);
  });

  it('gives a project\'s admins its settings forms, audited and shown on the project page and at /api/audit', async () => {
    stack.fake.permissions.set('owner', 'admin');
    const page = '/ci/projects/acme/open';
    const writer = await stack.app.inject({ method: 'GET', url: page, headers: { cookie: await stack.logIn('writer') } });
    assert.doesNotMatch(writer.body, /id="settings"/);
    const cookie = await stack.logIn('owner');
    const shown = await stack.app.inject({ method: 'GET', url: page, headers: { cookie } });
    assert.match(shown.body, /<form class="settings" method="post" action="\/api\/projects\/acme\/open\/enable">/);
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(shown, cookie) };
    const csrf = encodeURIComponent(csrfOf(shown.body));
    const url = '/api/projects/acme/open/enable';
    const settings = `forge=github&prTrust=everyone&schedulingShares=7&pollInterval=10m`;
    assert.equal((await stack.app.inject({ method: 'POST', url, headers: form, payload: settings })).statusCode, 403, 'no CSRF token, no change');
    const saved = await stack.app.inject({ method: 'POST', url, headers: form, payload: `_csrf=${csrf}&${settings}` });
    assert.equal(saved.statusCode, 303, saved.body);
    assert.equal(saved.headers.location, page);
    const read = async () =>
      (await stack.database.pool.query<{ enabled: boolean; pr_trust: string; scheduling_shares: number; poll: number | null }>(
        `SELECT enabled, pr_trust, scheduling_shares, extract(epoch FROM poll_interval)::int AS poll FROM projects WHERE name = 'acme/open'`,
      )).rows[0]!;
    assert.deepEqual(await read(), { enabled: true, pr_trust: 'everyone', scheduling_shares: 7, poll: 600 });
    const disabled = await stack.app.inject({ method: 'POST', url: '/api/projects/acme/open/disable', headers: form, payload: `_csrf=${csrf}` });
    assert.equal(disabled.statusCode, 303, disabled.body);
    assert.equal((await read()).enabled, false);
    const enabled = await stack.app.inject({ method: 'POST', url, headers: form, payload: `_csrf=${csrf}&forge=github&prTrust=collaborators&schedulingShares=100&pollInterval=` });
    assert.equal(enabled.statusCode, 303, enabled.body);
    assert.deepEqual(await read(), { enabled: true, pr_trust: 'collaborators', scheduling_shares: 100, poll: null });

    // The audit log on the page: who, what, when for everyone who sees the project; from where for its admins.
    const after = await stack.app.inject({ method: 'GET', url: page, headers: { cookie } });
    assert.match(after.body, /<section class="panel" id="audit">/);
    assert.match(after.body, /github:owner<\/td>\s*<td><code>project\.disable<\/code>/);
    assert.match(after.body, /<th>From<\/th>/);
    const anonymous = await stack.app.inject({ method: 'GET', url: page });
    assert.match(anonymous.body, /project\.disable/);
    assert.doesNotMatch(anonymous.body, /<th>From<\/th>/);
    assert.doesNotMatch(anonymous.body, /id="settings"/);

    const audit = '/api/audit?project=acme/open';
    assert.equal((await stack.app.inject({ method: 'GET', url: audit, headers: await stack.bearer('writer', 'admin') })).statusCode, 403);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/api/audit', headers: await stack.bearer('owner', 'admin') })).statusCode, 403, 'all projects\' log is for operators');
    const listed = await stack.app.inject({ method: 'GET', url: audit, headers: await stack.bearer('owner', 'admin') });
    assert.equal(listed.statusCode, 200, listed.body);
    const entries = listed.json<Array<{ actor: string; action: string; via: string; remote: string; at: string }>>();
    assert.deepEqual(entries.slice(0, 3).map((e) => [e.actor, e.action, e.via]), [
      ['github:owner', 'project.enable', 'session'],
      ['github:owner', 'project.disable', 'session'],
      ['github:owner', 'project.enable', 'session'],
    ]);
    assert.ok(entries.every((e) => e.remote !== '' && !Number.isNaN(Date.parse(e.at))));
    const all = await stack.app.inject({ method: 'GET', url: '/api/audit', headers: await stack.bearer(OPERATOR, 'admin') });
    assert.ok(all.json<Array<{ action: string }>>().some((e) => e.action === 'login'));
  });

  it('gives admins an Approve button on a deployment awaiting approval, sending the workflow\'s approve signal', async () => {
    stack.fake.permissions.set('owner', 'admin');
    const { rows } = await stack.database.pool.query<{ id: string }>(
      `INSERT INTO deployments (project_id, environment, attr, store_path, status)
       SELECT id, 'production', 'nixosConfigurations.web', '/nix/store/${'p'.repeat(32)}-nixos-system', 'awaiting-approval' FROM projects WHERE name = 'acme/open' RETURNING id::text`,
    );
    const id = rows[0]!.id;
    const url = `/api/deployments/${id}/approve`;
    const page = '/ci/projects/acme/open';
    const writer = await stack.app.inject({ method: 'GET', url: page, headers: { cookie: await stack.logIn('writer') } });
    assert.doesNotMatch(writer.body, /\/approve"/);
    assert.equal((await stack.app.inject({ method: 'POST', url, headers: await stack.bearer('writer', 'write') })).statusCode, 403);

    const workflowId = deployWorkflowId('acme/open', 'production');
    await placeholder(workflowId);
    const cookie = await stack.logIn('owner');
    const shown = await stack.app.inject({ method: 'GET', url: page, headers: { cookie } });
    assert.match(shown.body, new RegExp(`<form class="action" method="post" action="${url}">`));
    const pressed = await stack.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(shown, cookie) },
      payload: `_csrf=${encodeURIComponent(csrfOf(shown.body))}`,
    });
    assert.equal(pressed.statusCode, 303, pressed.body);
    assert.equal(pressed.headers.location, `${page}#deployment-${id}`);
    const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    const approvals = (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes?.signalName === 'approve' ? [e.workflowExecutionSignaledEventAttributes] : []));
    assert.equal(approvals.length, 1);
    const payload = approvals[0]!.input!.payloads![0]!;
    assert.deepEqual(JSON.parse(Buffer.from(payload.data!).toString('utf8')), { by: 'github:owner', deploymentId: id });
    const audit = await stack.database.pool.query<{ actor: string; project: string }>(`SELECT actor, project FROM audit_log WHERE action = 'deployment.approve'`);
    assert.deepEqual(audit.rows, [{ actor: 'github:owner', project: 'acme/open' }]);

    await stack.database.pool.query(`UPDATE deployments SET status = 'succeeded' WHERE id = $1`, [id]);
    const again = await stack.app.inject({ method: 'POST', url, headers: await stack.bearer('owner', 'admin') });
    assert.equal(again.statusCode, 409);
  });
});
