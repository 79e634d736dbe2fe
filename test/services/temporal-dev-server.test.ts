/**
 * The dev-server launcher itself (temporal/dev-server.ts), with servers of its own: state
 * persists in the SQLite file across restarts, a restart restores missing search
 * attributes, the Web UI answers, stop() frees the port, and a taken port is reported.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { isPortOpen } from '../../lib/ports.ts';
import { startTemporalDevServer, type DevServerLog } from '../../temporal/dev-server.ts';
import { DevServerError } from '../../temporal/errors.ts';
import { SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.ts';

const quiet: DevServerLog = { info: () => undefined, warn: () => undefined, debug: () => undefined };

async function customAttributeNames(connection: Connection, namespace: string): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.keys(customAttributes ?? {}).sort();
}

describe('startTemporalDevServer', () => {
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('keeps workflows in its SQLite file across restarts and restores our search attributes', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'harmonia-dev-server-'));
    dirs.push(stateDir);
    const namespace = 'harmonia-dev';
    const workflowId = `persisted-${randomUUID()}`;

    const first = await startTemporalDevServer({ namespace, stateDir, port: 0, uiPort: 0, log: quiet });
    assert.ok(first.uiUrl, 'the Web UI is on unless headless');
    assert.equal((await fetch(first.uiUrl)).status, 200);
    let connection = await Connection.connect({ address: first.address });
    try {
      const client = new Client({ connection, namespace });
      // No worker polls this queue: the workflow simply stays open, which is what we look for later.
      await client.workflow.start('notImplemented', {
        taskQueue: 'nobody-polls',
        workflowId,
        typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.project, value: 'persisted' }],
      });
      await connection.operatorService.removeSearchAttributes({ namespace, searchAttributes: [SEARCH_ATTRIBUTES.ref.name] });
      assert.ok(!(await customAttributeNames(connection, namespace)).includes(SEARCH_ATTRIBUTES.ref.name));
    } finally {
      await connection.close();
    }
    await first.stop();
    assert.equal(await isPortOpen('127.0.0.1', Number(first.address.split(':')[1])), false, 'stop() frees the port');
    await first.stop();

    const second = await startTemporalDevServer({ namespace, stateDir, port: 0, headless: true, log: quiet });
    try {
      assert.equal(second.uiUrl, undefined);
      connection = await Connection.connect({ address: second.address });
      const client = new Client({ connection, namespace });
      const description = await client.workflow.getHandle(workflowId).describe();
      assert.equal(description.status.name, 'RUNNING');
      assert.equal(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.project), 'persisted');
      assert.ok((await customAttributeNames(connection, namespace)).includes(SEARCH_ATTRIBUTES.ref.name));
      await client.workflow.getHandle(workflowId).terminate('test over');
      await connection.close();
    } finally {
      await second.stop();
    }
  });

  it('says which port is taken when it cannot bind', async () => {
    // Stands for another server on the port we ask for.
    const blocker: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(startTemporalDevServer({ namespace: 'default', port, headless: true, log: quiet, startTimeoutMs: 15_000 }), (error: unknown) => {
        assert.ok(error instanceof DevServerError);
        assert.match(error.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use: is another Temporal server running`));
        return true;
      });
    } finally {
      blocker.close();
    }
  });
});
