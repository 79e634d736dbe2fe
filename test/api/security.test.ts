/**
 * Security headers and webhook admission over a real listener (test database, runner's
 * Temporal): every response carries `nosniff`, no framing and a CSP; an HTML page may run exactly
 * its own inline scripts; a webhook without a signature, or announcing more than a forge sends, is
 * refused from its headers alone, before any of its body is read.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app.ts';
import { WEBHOOK_BODY_LIMIT } from '../../api/routes/webhook.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

/**
 * Sends only the request line and headers, never a body, and returns the status line the server
 * answers with: a server waiting for the body it was announced would never answer.
 */
function headersOnly(port: number, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to POST ${path} within 5 s: the server waits for the body`));
    }, 5_000);
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(answer.slice(0, answer.indexOf('\r\n')));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
    socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${lines.join('\r\n')}\r\n\r\n`);
  });
}

describe('security headers and webhook admission', () => {
  let database: TestDatabase;
  let temporal: Client;
  let app: FastifyInstance;
  let secrets: string;
  let base: string;
  let port: number;

  before(async () => {
    const address = requireEnv('TEMPORAL_ADDRESS');
    database = await createTestDatabase();
    temporal = await connectTemporal({ address, namespace: process.env.HARMONIA_CI_TEMPORAL_NAMESPACE ?? 'default' });
    secrets = await mkdtemp(join(tmpdir(), 'security-secrets-'));
    await writeFile(join(secrets, 'github'), 'github-secret\n');
    await writeFile(join(secrets, 'gitea'), 'gitea-secret\n');
    await writeFile(join(secrets, 'token'), 'token\n');
    const config = await loadServerConfig({
      env: {
        DATABASE_URL: database.url,
        TEMPORAL_ADDRESS: address,
        HARMONIA_CI_FORGES_GITHUB_TOKEN_FILE: join(secrets, 'token'),
        HARMONIA_CI_FORGES_GITHUB_WEBHOOK_SECRET_FILE: join(secrets, 'github'),
        HARMONIA_CI_FORGES_GITEA_URL: 'http://127.0.0.1:9',
        HARMONIA_CI_FORGES_GITEA_TOKEN_FILE: join(secrets, 'token'),
        HARMONIA_CI_FORGES_GITEA_WEBHOOK_SECRET_FILE: join(secrets, 'gitea'),
      },
    });
    app = buildApp({ config, log: createLogger({ level: 'silent' }), deps: { temporal } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await app?.close();
    await temporal?.connection.close();
    await database?.drop();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  it('lets a dashboard page run exactly its own inline scripts, and forbids framing and sniffing', async () => {
    const response = await fetch(`${base}/ci/`);
    assert.equal(response.status, 200);
    const page = await response.text();
    const scripts = [...page.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    assert.ok(scripts.length > 0, 'the landing page has an inline script');
    const policy = response.headers.get('content-security-policy') ?? '';
    const scriptSrc = policy.split('; ').find((d) => d.startsWith('script-src ')) ?? '';
    assert.deepEqual(
      scriptSrc.split(' ').slice(1),
      scripts.map((s) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`),
    );
    assert.match(policy, /default-src 'none'/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.doesNotMatch(policy, /script-src[^;]*unsafe-inline/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
  });

  it('gives API answers, errors included, a policy that allows nothing', async () => {
    for (const path of ['/healthz', '/api/deliveries', '/no/such/route']) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'", path);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
    }
  });

  it('refuses an unsigned webhook from its headers, before reading the body', async () => {
    const announced = { 'content-type': 'application/json', 'content-length': String(20 * 1024 * 1024) };
    assert.match(await headersOnly(port, '/webhook/github', { ...announced, 'x-github-event': 'push', 'x-github-delivery': 'd1' }), /^HTTP\/1\.1 401 /);
    assert.match(await headersOnly(port, '/webhook/gitea', { ...announced, 'x-gitea-event': 'push', 'x-gitea-delivery': 'd2' }), /^HTTP\/1\.1 401 /);
    const reply = await fetch(`${base}/webhook/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: '{}' });
    assert.equal(reply.status, 401);
    assert.match(((await reply.json()) as { error: string }).error, /missing X-Hub-Signature-256: set the webhook secret on GitHub/);
  });

  it('refuses a signed webhook announcing more than a forge sends, before reading the body', async () => {
    const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'd3', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
    assert.match(await headersOnly(port, '/webhook/github', { ...headers, 'content-length': String(WEBHOOK_BODY_LIMIT + 1) }), /^HTTP\/1\.1 413 /);
    assert.equal(WEBHOOK_BODY_LIMIT, 25 * 1024 * 1024, "GitHub's cap on payloads");
    const giteaHeaders = { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': 'd4', 'x-gitea-signature': '0'.repeat(64) };
    assert.match(await headersOnly(port, '/webhook/gitea', { ...giteaHeaders, 'content-length': String(WEBHOOK_BODY_LIMIT + 1) }), /^HTTP\/1\.1 413 /);
  });
});
