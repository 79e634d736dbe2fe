/**
 * The real app (test database, runner's Temporal): the error handler, the landing
 * page and the root redirect. Routes that fail on purpose are added to the app
 * before it starts, the way later route plugins join it.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app.ts';
import { errorResponses } from '../../api/error-handler.ts';
import { NotFoundError, ServiceUnavailableError } from '../../api/errors.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const TEMPORAL_UI = 'http://127.0.0.1:8233/?q="x"&y=<z>';

describe('the app', () => {
  let database: TestDatabase;
  let temporal: Client;
  let app: FastifyInstance;
  const logLines: string[] = [];

  before(async () => {
    const address = requireEnv('TEMPORAL_ADDRESS');
    const namespace = process.env.HARMONIA_CI_TEMPORAL_NAMESPACE ?? 'default';
    database = await createTestDatabase();
    temporal = await connectTemporal({ address, namespace });
    const config = await loadServerConfig({ env: { DATABASE_URL: database.url, TEMPORAL_ADDRESS: address } });
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const log = createLogger({ level: 'info', destination });
    app = buildApp({ config, log, deps: { temporal }, temporalUiUrl: TEMPORAL_UI });

    app.get('/test/crash', { schema: { response: errorResponses } }, async () => {
      throw new Error('connection to 10.0.0.7 failed: password=hunter2');
    });
    app.get('/test/unavailable', { schema: { response: errorResponses } }, async () => {
      throw new ServiceUnavailableError('signer queue has no pollers (internal detail)');
    });
    app.get('/test/missing', { schema: { response: errorResponses } }, async () => {
      throw new NotFoundError('build 42 does not exist');
    });
    app.post(
      '/test/echo',
      {
        schema: {
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
          response: { 200: { type: 'object', properties: { name: { type: 'string' } } }, ...errorResponses },
        },
      },
      async (request) => request.body,
    );
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await temporal?.connection.close();
    await database?.drop();
  });

  it('hides the details of a 5xx error and logs them with the request id', async () => {
    const response = await app.inject({ method: 'GET', url: '/test/crash' });
    assert.equal(response.statusCode, 500);
    const body = response.json<{ error: string; requestId: string }>();
    assert.deepEqual(Object.keys(body).sort(), ['error', 'requestId']);
    assert.equal(body.error, 'internal error');
    assert.doesNotMatch(response.body, /hunter2|10\.0\.0\.7/);
    assert.equal(response.headers['x-request-id'], body.requestId);
    const logged = logLines.map((line) => JSON.parse(line) as { reqId?: string; err?: { message: string } }).find((entry) => entry.err);
    assert.equal(logged?.reqId, body.requestId);
    assert.match(logged?.err?.message ?? '', /password=hunter2/);
  });

  it('hides the message of a typed 5xx error but keeps its status', async () => {
    const response = await app.inject({ method: 'GET', url: '/test/unavailable' });
    assert.equal(response.statusCode, 503);
    assert.equal(response.json<{ error: string }>().error, 'internal error');
  });

  it('passes 4xx messages through: typed errors, validation and unknown routes', async () => {
    const missing = await app.inject({ method: 'GET', url: '/test/missing' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<{ error: string }>().error, 'build 42 does not exist');

    const invalid = await app.inject({ method: 'POST', url: '/test/echo', payload: { other: 1 } });
    assert.equal(invalid.statusCode, 400);
    assert.match(invalid.json<{ error: string }>().error, /body must have required property 'name'/);

    const malformed = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    assert.equal(malformed.statusCode, 400);
    assert.match(malformed.json<{ error: string }>().error, /JSON/i);

    const valid = await app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'x' } });
    assert.deepEqual(valid.json(), { name: 'x' });

    const unknown = await app.inject({ method: 'GET', url: '/no/such/page' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<{ error: string }>().error, 'no route for GET /no/such/page');
  });

  it('redirects / to /ci/', async () => {
    const response = await app.inject({ method: 'GET', url: '/' });
    assert.equal(response.statusCode, 302);
    assert.equal(response.headers.location, '/ci/');
  });

  it('renders the landing page with the Temporal Web UI link escaped and a components panel', async () => {
    const response = await app.inject({ method: 'GET', url: '/ci/' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/html; charset=utf-8/);
    const page = response.body;
    assert.match(page, /^<!doctype html>/);
    assert.match(page, /<h1><a href="\/ci\/">harmonia-ci<\/a><\/h1>/);
    assert.ok(page.includes('href="http://127.0.0.1:8233/?q=&quot;x&quot;&amp;y=&lt;z&gt;"'), 'the configured URL is escaped');
    assert.ok(!page.includes('<z>'), 'no raw markup from configuration');
    assert.match(page, /id="components"/);
    assert.match(page, /fetch\('\/healthz'/);
    assert.match(page, /prefers-color-scheme: dark/);
  });
});
