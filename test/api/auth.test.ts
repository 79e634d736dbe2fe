/**
 * Logging in with the forge and acting with a session or a token, on the real app with a test
 * database and the runner's Temporal, against a fake GitHub whose OAuth endpoints follow RFC 6749
 * and whose API requests are checked against GitHub's OpenAPI description.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { revokeToken } from '../../access/tokens.ts';
import { cookieHeader, csrfOf, OPERATOR, startAccessStack, type AccessStack } from './auth-support.ts';

describe('logins, sessions, CSRF and tokens', () => {
  let stack: AccessStack;

  before(async () => {
    stack = await startAccessStack();
  });

  after(async () => {
    await stack?.close();
  });

  it('logs a person in through the forge and keeps them in a signed HttpOnly, SameSite=Lax cookie', async () => {
    const anonymous = await stack.app.inject({ method: 'GET', url: '/ci/' });
    assert.match(anonymous.body, /<a href="\/auth\/github\/login">Log in with GitHub<\/a>/);
    assert.equal(anonymous.headers['set-cookie'], undefined, 'an anonymous page sets no cookie');

    const start = await stack.app.inject({ method: 'GET', url: '/auth/github/login' });
    const authorize = new URL(String(start.headers.location));
    assert.equal(authorize.origin + authorize.pathname, `${stack.fake.url}/login/oauth/authorize`);
    assert.equal(authorize.searchParams.get('redirect_uri'), 'http://ci.test/auth/github/callback');

    const cookie = await stack.logIn('mallory');
    const session = /harmonia-ci-session=[^;]+/.exec(cookie);
    assert.ok(session, 'the callback sets the session cookie');
    const page = await stack.app.inject({ method: 'GET', url: '/ci/', headers: { cookie } });
    assert.match(page.body, /mallory \(github\)/);
    assert.match(page.body, /<form class="account" method="post" action="\/auth\/logout">/);

    const relogin = await stack.app.inject({ method: 'GET', url: '/auth/github/login' });
    stack.fake.oauthUser = 'mallory';
    const callback = new URL((await fetch(String(relogin.headers.location), { redirect: 'manual' })).headers.get('location')!);
    const done = await stack.app.inject({ method: 'GET', url: `${callback.pathname}${callback.search}`, headers: { cookie: cookieHeader(relogin) } });
    const attributes = String([done.headers['set-cookie']].flat().find((c) => String(c).startsWith('harmonia-ci-session=')));
    assert.match(attributes, /; HttpOnly/i);
    assert.match(attributes, /; SameSite=Lax/i);
    assert.doesNotMatch(attributes, /; Secure/i, 'not Secure on an http public URL');

    const tampered = cookie.replace(/harmonia-ci-session=([^;]{8})/, 'harmonia-ci-session=AAAAAAAA');
    const forged = await stack.app.inject({ method: 'GET', url: '/ci/', headers: { cookie: tampered } });
    assert.doesNotMatch(forged.body, /mallory/, 'an altered cookie is no session');

    assert.deepEqual(stack.fake.violations, []);
    assert.ok(stack.fake.requests.some((r) => r.method === 'GET' && r.path === '/user'), 'who logged in was asked of GET /user');
  });

  it('refuses a callback whose state the browser did not start', async () => {
    const start = await stack.app.inject({ method: 'GET', url: '/auth/github/login' });
    stack.fake.oauthUser = 'mallory';
    const callback = new URL((await fetch(String(start.headers.location), { redirect: 'manual' })).headers.get('location')!);
    const response = await stack.app.inject({ method: 'GET', url: `${callback.pathname}${callback.search}` });
    assert.equal(response.statusCode, 401);
    assert.equal([response.headers['set-cookie']].flat().some((c) => String(c).startsWith('harmonia-ci-session=')), false);
  });

  it('refuses a state-changing post carried by the session without the page\'s CSRF token', async () => {
    const cookie = await stack.logIn(OPERATOR);
    const crossSite = await stack.app.inject({
      method: 'POST',
      url: '/api/projects/acme/open/disable',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      payload: '',
    });
    assert.equal(crossSite.statusCode, 403);
    const wrong = await stack.app.inject({ method: 'POST', url: '/api/projects/sync', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: '_csrf=forged' });
    assert.equal(wrong.statusCode, 403);

    const page = await stack.app.inject({ method: 'GET', url: '/ci/', headers: { cookie } });
    const csrf = csrfOf(page.body);
    const synced = await stack.app.inject({
      method: 'POST',
      url: '/api/projects/sync',
      headers: { cookie: cookieHeader(page, cookie), 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${encodeURIComponent(csrf)}`,
    });
    assert.equal(synced.statusCode, 200, synced.body);
    const { rows } = await stack.database.pool.query('SELECT actor, via, action FROM audit_log WHERE action = $1', ['projects.sync']);
    assert.ok(rows.some((r) => r.actor === `github:${OPERATOR}` && r.via === 'session'), 'the sync is in the audit log');
  });

  it('logs out: the session ends', async () => {
    const cookie = await stack.logIn('mallory');
    const page = await stack.app.inject({ method: 'GET', url: '/ci/', headers: { cookie } });
    const jar = cookieHeader(page, cookie);
    const out = await stack.app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: jar, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${encodeURIComponent(csrfOf(page.body))}` });
    assert.equal(out.statusCode, 303);
    const after = await stack.app.inject({ method: 'GET', url: '/ci/', headers: { cookie: cookieHeader(out, jar) } });
    assert.doesNotMatch(after.body, /mallory/);
  });

  it('lets only operators sync and only repository admins enable, with a token of enough scope', async () => {
    const anonymous = await stack.app.inject({ method: 'POST', url: '/api/projects/sync' });
    assert.equal(anonymous.statusCode, 401);
    assert.match(anonymous.json<{ error: string }>().error, /log in as an operator/);
    const person = await stack.app.inject({ method: 'POST', url: '/api/projects/sync', headers: await stack.bearer('mallory', 'admin') });
    assert.equal(person.statusCode, 403);
    const weak = await stack.app.inject({ method: 'POST', url: '/api/projects/sync', headers: await stack.bearer(OPERATOR, 'write') });
    assert.equal(weak.statusCode, 403);
    assert.match(weak.json<{ error: string }>().error, /scope write/);

    stack.fake.permissions.set('writer', 'write');
    stack.fake.permissions.set('owner', 'admin');
    const writer = await stack.app.inject({ method: 'POST', url: '/api/projects/acme/secret/enable', headers: await stack.bearer('writer', 'admin'), payload: {} });
    assert.equal(writer.statusCode, 403);
    assert.match(writer.json<{ error: string }>().error, /github:writer holds write on acme\/secret; this needs admin/);
    const stranger = await stack.app.inject({ method: 'POST', url: '/api/projects/acme/secret/enable', headers: await stack.bearer('mallory', 'admin'), payload: {} });
    assert.equal(stranger.statusCode, 404, 'a private repository is not even confirmed to someone who cannot read it');
    const owner = await stack.app.inject({ method: 'POST', url: '/api/projects/acme/secret/enable', headers: await stack.bearer('owner', 'admin'), payload: { prTrust: 'none' } });
    assert.equal(owner.statusCode, 200, owner.body);
    const ownerRead = await stack.app.inject({ method: 'POST', url: '/api/projects/acme/secret/enable', headers: await stack.bearer('owner', 'read'), payload: {} });
    assert.equal(ownerRead.statusCode, 403);
    assert.deepEqual(stack.fake.violations, []);
  });

  it('stops a revoked or expired token at once, and refuses malformed ones', async () => {
    const headers = await stack.bearer(OPERATOR, 'read');
    assert.equal((await stack.app.inject({ method: 'GET', url: '/api/projects', headers })).statusCode, 200);
    const { rows } = await stack.database.pool.query<{ id: string }>('SELECT id FROM api_tokens ORDER BY id DESC LIMIT 1');
    assert.equal(await revokeToken(stack.database.pool, String(rows[0]!.id)), true);
    const revoked = await stack.app.inject({ method: 'GET', url: '/api/projects', headers });
    assert.equal(revoked.statusCode, 401);
    assert.match(revoked.json<{ error: string }>().error, /unknown, revoked or expired/);

    const expired = await stack.bearer(OPERATOR, 'read', new Date(Date.now() - 1000));
    assert.equal((await stack.app.inject({ method: 'GET', url: '/api/projects', headers: expired })).statusCode, 401);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/api/projects', headers: { authorization: 'Basic b3A6cHc=' } })).statusCode, 401);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/api/projects', headers: { authorization: `Bearer hci_${'A'.repeat(43)}` } })).statusCode, 401);
    const stored = await stack.database.pool.query<{ token_hash: Buffer }>('SELECT token_hash FROM api_tokens');
    assert.ok(stored.rows.every((r) => r.token_hash.length === 32), 'only hashes are stored');
  });

  it('lets a logged-in person create, list and revoke their own tokens at /ci/settings/tokens, the secret shown once', async () => {
    const page = '/ci/settings/tokens';
    assert.equal((await stack.app.inject({ method: 'GET', url: page })).statusCode, 401);
    const cookie = await stack.logIn('alice');
    const shown = await stack.app.inject({ method: 'GET', url: page, headers: { cookie } });
    assert.equal(shown.statusCode, 200);
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(shown, cookie) };
    const csrf = encodeURIComponent(csrfOf(shown.body));
    assert.equal((await stack.app.inject({ method: 'POST', url: page, headers: form, payload: 'scope=write&expires=7d' })).statusCode, 403);
    const created = await stack.app.inject({ method: 'POST', url: page, headers: form, payload: `_csrf=${csrf}&scope=write&expires=7d&description=laptop` });
    assert.equal(created.statusCode, 200, created.body);
    const token = /<pre id="token-secret">(hci_[A-Za-z0-9_-]{43})<\/pre>/.exec(created.body)?.[1];
    assert.ok(token, 'the new token is on the page');
    const bearer = { authorization: `Bearer ${token}` };
    const who = await stack.app.inject({ method: 'GET', url: '/api/whoami', headers: bearer });
    assert.equal(who.statusCode, 200, who.body);
    assert.deepEqual(who.json(), { forge: 'github', login: 'alice', operator: false, via: who.json<{ via: string }>().via, scope: 'write' });
    const { rows } = await stack.database.pool.query<{ id: string; expires_at: Date }>(`SELECT id, expires_at FROM api_tokens WHERE login = 'alice'`);
    assert.equal(rows.length, 1);
    assert.ok(Math.abs(rows[0]!.expires_at.getTime() - Date.now() - 7 * 86_400_000) < 60_000, 'expires in 7 days');
    const id = String(rows[0]!.id);

    const listed = await stack.app.inject({ method: 'GET', url: page, headers: { cookie } });
    assert.match(listed.body, new RegExp(`action="/ci/settings/tokens/${id}/revoke"`));
    assert.doesNotMatch(listed.body, new RegExp(token), 'the secret is shown once only');
    const other = await stack.logIn('tokenless');
    const otherPage = await stack.app.inject({ method: 'GET', url: page, headers: { cookie: other } });
    assert.doesNotMatch(otherPage.body, /\/revoke"/);
    const stolen = await stack.app.inject({
      method: 'POST',
      url: `${page}/${id}/revoke`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(otherPage, other) },
      payload: `_csrf=${encodeURIComponent(csrfOf(otherPage.body))}`,
    });
    assert.equal(stolen.statusCode, 404, 'nobody revokes another person\'s token');

    const revoked = await stack.app.inject({ method: 'POST', url: `${page}/${id}/revoke`, headers: form, payload: `_csrf=${csrf}` });
    assert.equal(revoked.statusCode, 303, revoked.body);
    assert.equal(revoked.headers.location, page);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/api/whoami', headers: bearer })).statusCode, 401);
    const audit = await stack.database.pool.query<{ action: string; actor: string }>(`SELECT action, actor FROM audit_log WHERE action LIKE 'token.%' ORDER BY id`);
    assert.deepEqual(audit.rows.map((r) => [r.action, r.actor]), [['token.create', 'github:alice'], ['token.revoke', 'github:alice']]);
  });

  // Last: it spends this address's login allowance.
  it('limits how often one address may start a login or ask about tokens', async () => {
    // Earlier cases spent some of the allowance already: each limit must end in a 429 within its size.
    const until429 = async (url: string, max: number): Promise<number[]> => {
      const statuses: number[] = [];
      while (statuses.at(-1) !== 429 && statuses.length <= max) statuses.push((await stack.app.inject({ method: 'GET', url })).statusCode);
      return statuses;
    };
    const logins = await until429('/auth/github/login', 20);
    assert.equal(logins.at(-1), 429, 'the login link is limited to 20 a minute');
    assert.ok(logins.slice(0, -1).every((status) => status === 302));
    const limited = await stack.app.inject({ method: 'GET', url: '/auth/github/login' });
    assert.ok(Number(limited.headers['retry-after']) > 0, 'a refused client is told when to come back');
    const whoami = await until429('/api/whoami', 10);
    assert.equal(whoami.at(-1), 429, 'token endpoints are limited to 10 a minute');
    assert.ok(whoami.slice(0, -1).every((status) => status === 401));
  });
});
