/** A LocalStack made of services someone else runs (the test runner's): stopping it stops nothing. */
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { LocalStack } from '../../cli/stack.ts';

export function externalStack(services: {
  client: Client;
  workerConnection: NativeConnection;
  namespace: string;
  address: string;
  database: { url: string; pool: Pool };
  daemonSocket: string;
  dataConverter?: DataConverter | undefined;
}): LocalStack {
  return {
    client: services.client,
    workerConnection: services.workerConnection,
    dataConverter: services.dataConverter,
    namespace: services.namespace,
    temporalAddress: services.address,
    temporalUiUrl: undefined,
    database: { ...services.database, embedded: false, migration: undefined, close: async () => undefined },
    daemonSocket: services.daemonSocket,
    stop: async () => undefined,
  };
}
