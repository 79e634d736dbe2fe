/**
 * Round trip through the Temporal dev server started by test/run.ts: a real worker runs
 * a workflow and its activity, our search attributes are registered, set at start and
 * from workflow code, and found again through a visibility query.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { findFreePort } from '../../lib/ports.ts';
import { connectTemporal, connectTemporalWorker, loadTlsConfig } from '../../temporal/connection.ts';
import { TemporalConnectionError, TemporalNamespaceError, TemporalTlsError } from '../../temporal/errors.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ALL_SEARCH_ATTRIBUTES, ensureSearchAttributes, SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.ts';
import { requireEnv } from '../helpers/env.ts';
import { createRoundTripActivities } from './fixtures/round-trip-activities.ts';
import type { roundTripWorkflow } from './fixtures/round-trip-workflow.ts';

const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD

// The worker's INFO lines (bundle statistics, state changes) would drown the test report.
Runtime.install({ logger: new DefaultLogger('WARN') });

describe('Temporal dev server', () => {
  const address = requireEnv('TEMPORAL_ADDRESS');
  const namespace = requireEnv('HARMONIA_CI_TEMPORAL_NAMESPACE');
  let client: Client;

  before(async () => {
    client = await connectTemporal({ address, namespace });
  });
  after(async () => {
    await client?.connection.close();
  });

  it('has our search attributes registered as Keyword', async () => {
    assert.deepEqual(await ensureSearchAttributes(client.connection, namespace), []);
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
    for (const key of ALL_SEARCH_ATTRIBUTES) assert.equal(customAttributes?.[key.name], KEYWORD, key.name);
  });

  it('runs a workflow and its activity on a worker, and finds it by search attributes', async () => {
    const taskQueue = `round-trip-${randomUUID()}`;
    const project = `project-${randomUUID()}`;
    const workflowId = `round-trip/${project}`;
    const calls: string[] = [];
    const connection = await connectTemporalWorker({ address, namespace });
    try {
      const worker = await Worker.create({
        connection,
        namespace,
        taskQueue,
        workflowsPath: fileURLToPath(new URL('./fixtures/round-trip-workflow.ts', import.meta.url)),
        activities: createRoundTripActivities(calls),
      });
      const result = await worker.runUntil(
        client.workflow.execute<typeof roundTripWorkflow>('roundTripWorkflow', {
          taskQueue,
          workflowId,
          args: ['hello', 'succeeded'],
          typedSearchAttributes: [
            { key: SEARCH_ATTRIBUTES.project, value: project },
            { key: SEARCH_ATTRIBUTES.ref, value: 'refs/heads/main' },
          ],
        }),
      );
      assert.equal(result, `HELLO (${workflowId})`);
      assert.deepEqual(calls, ['hello']);
    } finally {
      await connection.close();
    }

    const description = await client.workflow.getHandle(workflowId).describe();
    assert.equal(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.project), project);
    assert.equal(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.status), 'succeeded');

    // Visibility is updated asynchronously after the workflow closes.
    const query = `HarmoniaProject = '${project}' AND HarmoniaStatus = 'succeeded' AND HarmoniaRef = 'refs/heads/main'`;
    let found: string[] = [];
    for (let attempt = 0; attempt < 50 && found.length === 0; attempt++) {
      found = [];
      for await (const execution of client.workflow.list({ query })) found.push(execution.workflowId);
      if (found.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(found, [workflowId]);
    const other = [];
    for await (const execution of client.workflow.list({ query: `HarmoniaProject = '${project}' AND HarmoniaStatus = 'failed'` })) other.push(execution);
    assert.deepEqual(other, []);
  });

  it('registers a missing namespace and its search attributes, once', async () => {
    const fresh = `harmonia-test-${randomUUID()}`;
    await assert.rejects(connectTemporal({ address, namespace: fresh }), (error: unknown) => {
      assert.ok(error instanceof TemporalNamespaceError);
      assert.match(error.message, new RegExp(`no namespace "${fresh}".*temporal operator namespace create`));
      return true;
    });
    assert.equal(await ensureNamespace(client.connection, fresh, { retentionDays: 1 }), true);
    assert.equal(await ensureNamespace(client.connection, fresh), false);
    const added = await ensureSearchAttributes(client.connection, fresh);
    assert.deepEqual([...added].sort(), ALL_SEARCH_ATTRIBUTES.map((key) => key.name).sort());
    assert.deepEqual(await ensureSearchAttributes(client.connection, fresh), []);
    const freshClient = await connectTemporal({ address, namespace: fresh });
    await freshClient.connection.close();
  });

  it('names the address and the fix when nothing listens there', async () => {
    const closed = `127.0.0.1:${await findFreePort()}`;
    await assert.rejects(connectTemporal({ address: closed, namespace, connectTimeoutMs: 500 }), (error: unknown) => {
      assert.ok(error instanceof TemporalConnectionError);
      assert.equal(error.address, closed);
      assert.match(error.message, new RegExp(`cannot connect to Temporal at ${closed}.*temporal server start-dev`));
      return true;
    });
  });

  it('refuses half a client certificate pair and names missing TLS files', async () => {
    await assert.rejects(loadTlsConfig({ clientCertFile: '/nonexistent/client.pem' }), TemporalTlsError);
    await assert.rejects(loadTlsConfig({ serverRootCaFile: '/nonexistent/ca.pem' }), /\/nonexistent\/ca\.pem/);
    assert.equal(await loadTlsConfig(undefined), undefined);
    assert.deepEqual(await loadTlsConfig(true), {});
  });

  it('reads the CA, certificate and key files for mutual TLS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harmonia-tls-'));
    try {
      const files = { ca: join(dir, 'ca.pem'), crt: join(dir, 'client.pem'), key: join(dir, 'client.key') };
      for (const [name, path] of Object.entries(files)) await writeFile(path, `-----BEGIN ${name}-----\n`);
      const tls = await loadTlsConfig({ serverRootCaFile: files.ca, clientCertFile: files.crt, clientKeyFile: files.key, serverName: 'temporal.internal' });
      assert.equal(tls?.serverNameOverride, 'temporal.internal');
      assert.equal(Buffer.from(tls!.serverRootCACertificate!).toString(), '-----BEGIN ca-----\n');
      assert.equal(Buffer.from(tls!.clientCertPair!.crt).toString(), '-----BEGIN crt-----\n');
      assert.equal(Buffer.from(tls!.clientCertPair!.key).toString(), '-----BEGIN key-----\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
