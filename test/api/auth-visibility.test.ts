/**
 * Private projects stay invisible to whoever may not read them on the forge: every kind of read
 * route (HTML pages, JSON, event streams, build pages and logs) answered to an anonymous caller,
 * a logged-in stranger, a reader with a session, and an operator's token; and the binary cache's
 * log, narinfo, listing and NAR of what only the private project built.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { OPERATOR, startAccessStack, type AccessStack } from './auth-support.ts';

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

const nix32 = (length: number): string => Array.from(randomBytes(length), (byte) => NIX_BASE32[byte % 32]).join('');

describe('visibility of private projects', () => {
  let stack: AccessStack;
  let cacheDir: string;
  let drvPath: string;
  let hash: string;
  /** The hash part of the private job's output, and the NAR hash naming its NAR. */
  const out = { hash: nix32(32), narHash: nix32(52) };
  /** A path the cache holds that no project built (a source, an upstream path): anyone may fetch it. */
  const unowned = nix32(32);

  before(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'visibility-cache-'));
    const cache = new LocalDirectoryBackend(cacheDir);
    stack = await startAccessStack({ cache, env: { HARMONIA_CI_AUTH_HIDE_PRIVATE_OUTPUTS: 'true' } });
    hash = nix32(32);
    drvPath = `/nix/store/${hash}-secret-job.drv`;
    const pool = stack.database.pool;
    await pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, 'secret-job', 'x86_64-linux')`, [drvPath]);
    await pool.query(
      `INSERT INTO derivation_outputs (drv_path, output_name, out_path, nar_hash, nar_size, "references", registered_at) VALUES ($1, 'out', $2, $3, 4, '{}', now())`,
      [drvPath, `/nix/store/${out.hash}-secret-job`, `sha256:${out.narHash}`],
    );
    const text = { contentType: 'text/plain' };
    await cache.put(`${out.hash}.narinfo`, Buffer.from(`StorePath: /nix/store/${out.hash}-secret-job\n`), text);
    await cache.put(`${out.hash}.ls`, Buffer.from('{"version":1}'), text);
    await cache.put(`nar/${out.narHash}.nar.zst`, Buffer.from('secret NAR'), text);
    await cache.put(`log/${hash}-secret-job.drv`, Buffer.from('secret log'), text);
    await cache.put(`${unowned}.narinfo`, Buffer.from(`StorePath: /nix/store/${unowned}-source\n`), text);
    await pool.query(`INSERT INTO eval_attrs (eval_id, attr, drv_path) VALUES ($1, 'secret-job', $2)`, [stack.evals.private, drvPath]);
    await pool.query(
      `INSERT INTO forge_deliveries (forge, delivery_id, event, project_id, ref, intent, status, outcome, failures, finished_at)
       SELECT 'github', 'd-secret', 'push', id, 'refs/heads/main', '{}', 'parked', 'unreachable', 5, now() FROM projects WHERE name = 'acme/secret'`,
    );
  });

  after(async () => {
    await stack?.close();
    await rm(cacheDir, { recursive: true, force: true });
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
    { url: `/api/builds/${hash}/log`, leaks: (status) => status !== 404 },
    ...cacheReads().map((url) => ({ url, leaks: (status: number) => status !== 404 })),
  ];
  /** The cache's files of the private job: its log, and its output's narinfo, listing and NAR. */
  const cacheReads = (): string[] => [`/log/${hash}-secret-job.drv`, `/${out.hash}.narinfo`, `/${out.hash}.ls`, `/nar/${out.narHash}.nar.zst`];

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
    const head = await stack.app.inject({ method: 'HEAD', url: `/nar/${out.narHash}.nar.zst` });
    assert.equal(head.statusCode, 404);
    const source = await stack.app.inject({ method: 'GET', url: `/${unowned}.narinfo` });
    assert.equal(source.statusCode, 200, 'a path no project built stays public');
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
    // Nix reads the cache with a netrc: any user name, an API token of the reader as password.
    const authorization = (await stack.bearer('reader', 'read')).authorization!;
    const netrc = { authorization: `Basic ${Buffer.from(`reader:${authorization.slice('Bearer '.length)}`).toString('base64')}`, 'accept-encoding': 'zstd' };
    const bodies = [];
    for (const url of cacheReads()) {
      const response = await stack.app.inject({ method: 'GET', url, headers: netrc });
      assert.equal(response.statusCode, 200, url);
      bodies.push(response.body);
    }
    assert.equal(bodies[0], 'secret log');
    assert.equal(bodies[3], 'secret NAR');
    const stranger = await stack.bearer('stranger', 'read');
    const refused = await stack.app.inject({ method: 'GET', url: `/log/${hash}-secret-job.drv`, headers: { authorization: stranger.authorization! } });
    assert.equal(refused.statusCode, 404);
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
