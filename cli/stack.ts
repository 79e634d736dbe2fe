/**
 * Everything one machine needs, started only where missing: a Temporal dev server unless an
 * address is configured (or one already answers on the usual port), the embedded PostgreSQL
 * unless a URL is configured, and a nix-daemon unless one answers on the usual socket. `stop()`
 * stops what this stack started, newest first, and nothing else.
 */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import { temporalConnectionConfig } from '../temporal/settings.ts';
import type { ServerConfig } from '../config/types.ts';
import { openDatabase, type Database } from '../db/open.ts';
import { resolveSocketPath } from '../daemon/protocol/pool.ts';
import type { Logger } from '../lib/log.ts';
import { daemonAnswers, startNixDaemon } from '../lib/nix-daemon.ts';
import { isPortOpen } from '../lib/ports.ts';
import { connectTemporal, connectTemporalWorker, dataConverterOf } from '../temporal/connection.ts';
import { startTemporalDevServer } from '../temporal/dev-server.ts';

export interface LocalStackOptions {
  config: ServerConfig;
  log: Logger;
  /** Start the dev server with its Web UI. */
  ui: boolean;
  /** Port for a dev server we start (default 7233; 0 picks a free one). */
  temporalPort?: number;
  /** Told one line per component as it comes up. */
  report(line: string): void;
  /** Told the name of each component once it has stopped. */
  onStopped?(name: string): void;
}

export interface LocalStack {
  client: Client;
  workerConnection: NativeConnection;
  /** The payload codec's converter, for every worker and client beside `client`. */
  dataConverter: DataConverter | undefined;
  namespace: string;
  temporalAddress: string;
  temporalUiUrl: string | undefined;
  database: Database;
  daemonSocket: string;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { config, log, report } = options;
  const stoppers: Array<{ name: string; stop(): Promise<void> }> = [];
  const stop = async (): Promise<void> => {
    for (let item = stoppers.pop(); item; item = stoppers.pop()) {
      await item.stop().then(
        () => options.onStopped?.(item.name),
        (error: Error) => log.warn({ err: error }, `could not stop ${item.name} cleanly`),
      );
    }
  };
  try {
    const namespace = config.temporal.namespace;
    let address = config.temporal.address;
    let temporalUiUrl: string | undefined;
    const port = options.temporalPort ?? 7233;
    if (!address && port !== 0 && (await isPortOpen('127.0.0.1', port))) {
      address = `127.0.0.1:${port}`;
      report(`temporal   using the server already listening on ${address}`);
    } else if (!address) {
      const server = await startTemporalDevServer({ namespace, log, stateDir: config.stateDir, port, headless: !options.ui });
      stoppers.push({ name: 'Temporal dev server', stop: () => server.stop() });
      address = server.address;
      temporalUiUrl = server.uiUrl;
      report(`temporal   dev server at ${address}${temporalUiUrl ? `, Web UI ${temporalUiUrl}` : ''}`);
    } else {
      report(`temporal   ${address} (configured)`);
    }
    const connectionConfig = await temporalConnectionConfig(config.temporal, address);
    const client = await connectTemporal(connectionConfig);
    stoppers.push({ name: 'Temporal client', stop: () => client.connection.close() });
    const workerConnection = await connectTemporalWorker(connectionConfig);
    stoppers.push({ name: 'Temporal worker connection', stop: () => workerConnection.close() });

    const database = await openDatabase({ url: config.database.url, stateDir: config.stateDir, migrate: true, log });
    stoppers.push({ name: 'database', stop: () => database.close() });
    report(`database   ${database.embedded ? `embedded PGlite in ${join(config.stateDir, 'pglite')}` : 'configured PostgreSQL'}`);

    let daemonSocket = resolveSocketPath();
    if (await daemonAnswers(daemonSocket)) {
      report(`nix        daemon at ${daemonSocket}`);
    } else {
      const daemon = await startNixDaemon({ dir: config.stateDir });
      stoppers.push({ name: 'nix-daemon', stop: () => daemon.stop() });
      daemonSocket = daemon.socketPath;
      report(`nix        started nix-daemon on ${daemonSocket}`);
    }
    return { client, workerConnection, dataConverter: dataConverterOf(connectionConfig), namespace, temporalAddress: address, temporalUiUrl, database, daemonSocket, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
