/**
 * Private projects stay invisible to whoever may not read them on the forge: every kind of read
 * route (HTML pages, JSON, event streams, build pages and logs) answered to an anonymous caller,
 * a logged-in stranger, a reader with a session, and an operator's token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { OPERATOR, startAccessStack, type AccessStack } from './auth-support.ts';

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

describe('visibility of private projects', () => {
  let stack: AccessStack;
  let drvPath: string;
  let hash: string;

  before(async () => {
    stack = await startAccessStack();
    hash = Array.from(randomBytes(32), (byte) => NIX_BASE32[byte % 32]).join('');
    drvPath = `/nix/store/${hash}-secret-job.drv`;
    const pool = stack.database.pool;
    await pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, 'secret-job', 'x86_64-linux')`, [drvPath]);
    await pool.query(`INSERT INTO eval_attrs (eval_id, attr, drv_path) VALUES ($1, 'secret-job', $2)`, [stack.evals.private, drvPath]);
    await pool.query(
      `INSERT INTO forge_deliveries (forge, delivery_id, event, project_id, ref, intent, status, outcome, failures, finished_at)
       SELECT 'github', 'd-secret', 'push', id, 'refs/heads/main', '{}', 'parked', 'unreachable', 5, now() FROM projects WHERE name = 'acme/secret'`,
    );
  });

  after(async () => {
    await stack?.close();
  });

  /** Every read route, and whether what it answers mentions the private project. */
  const reads = (): Array<{ url: string; leaks: (status: number, body: string) => boolean }> => [
    { url: '/ci/', leaks: (_, body) => body.includes('acme/secret') },
    { url: '/ci/projects', leaks: (_, body) => body.includes('acme/secret') },
    { url: '/ci/projects/acme/secret', leaks: (status) => status !== 404 },
    { url: `/ci/evals/${stack.evals.private}`, leaks: (status) => status !== 404 },
    { url: `/ci/evals/${stack.evals.private}/events`, leaks: (status) => status !== 404 },
    { url: `/ci/builds/${hash}`, leaks: (status) => status !== 404 },
    { url: `/ci/builds/${hash}/log/events`, leaks: (status) => status !== 404 },
    { url: '/api/projects', leaks: (_, body) => body.includes('acme/secret') },
    { url: '/api/evals', leaks: (_, body) => body.includes('acme/secret') },
    { url: `/api/evals/${stack.evals.private}`, leaks: (status) => status !== 404 },
    { url: '/api/deliveries?status=parked', leaks: (_, body) => body.includes('acme/secret') },
  ];

  const leaksTo = async (headers: Record<string, string>): Promise<string[]> => {
    const leaked: string[] = [];
    for (const read of reads()) {
      const response = await stack.app.inject({ method: 'GET', url: read.url, headers });
      if (read.leaks(response.statusCode, response.body)) leaked.push(`${read.url} (${response.statusCode})`);
    }
    return leaked;
  };

  it('shows an anonymous caller the public project and nothing of the private one', async () => {
    assert.deepEqual(await leaksTo({}), []);
    const open = await stack.app.inject({ method: 'GET', url: `/ci/evals/${stack.evals.public}` });
    assert.equal(open.statusCode, 200);
    const list = await stack.app.inject({ method: 'GET', url: '/api/evals' });
    assert.deepEqual(list.json<Array<{ project: string }>>().map((e) => e.project), ['acme/open']);
  });

  it('hides it from a logged-in person the forge gives no access', async () => {
    assert.deepEqual(await leaksTo({ cookie: await stack.logIn('stranger') }), []);
  });

  it('shows it to a reader logged in with the forge and to an operator\'s token', async () => {
    stack.fake.permissions.set('reader', 'read');
    const cookie = await stack.logIn('reader');
    const project = await stack.app.inject({ method: 'GET', url: '/ci/projects/acme/secret', headers: { cookie } });
    assert.equal(project.statusCode, 200);
    const evalPage = await stack.app.inject({ method: 'GET', url: `/api/evals/${stack.evals.private}`, headers: { cookie } });
    assert.equal(evalPage.statusCode, 200);
    const build = await stack.app.inject({ method: 'GET', url: `/ci/builds/${hash}`, headers: { cookie } });
    assert.equal(build.statusCode, 200);
    const operator = await stack.bearer(OPERATOR, 'read');
    const listed = await stack.app.inject({ method: 'GET', url: '/api/evals', headers: operator });
    assert.deepEqual(listed.json<Array<{ project: string }>>().map((e) => e.project).sort(), ['acme/open', 'acme/secret']);
    const parked = await stack.app.inject({ method: 'GET', url: '/api/deliveries?status=parked', headers: operator });
    assert.deepEqual(parked.json<Array<{ project: string }>>().map((d) => d.project), ['acme/secret']);
    const landing = await stack.app.inject({ method: 'GET', url: '/ci/', headers: { cookie } });
    assert.match(landing.body, /acme\/secret/);
    assert.deepEqual(stack.fake.violations, []);
  });

  it('asks the forge again once a login refreshes the permission', async () => {
    stack.fake.permissions.set('leaver', 'read');
    const before = await stack.logIn('leaver');
    assert.equal((await stack.app.inject({ method: 'GET', url: '/ci/projects/acme/secret', headers: { cookie: before } })).statusCode, 200);
    stack.fake.permissions.set('leaver', 'none');
    const after = await stack.logIn('leaver');
    assert.equal((await stack.app.inject({ method: 'GET', url: '/ci/projects/acme/secret', headers: { cookie: after } })).statusCode, 404);
  });
});
