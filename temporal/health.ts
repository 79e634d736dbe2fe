/** The Temporal health check: `/healthz` runs it, and `harmonia-ci dev` as Temporal comes up. */
import type { Client } from '@temporalio/client';
import { CHECK_TIMEOUT_MS, timedCheck, type ComponentHealth } from '../lib/health.ts';

/** The Temporal frontend answers a cheap call within the deadline. */
export function checkTemporal(client: Client): Promise<ComponentHealth> {
  return timedCheck(true, async () => {
    // The gRPC deadline ends first, so its error (not the generic timeout) is reported.
    const info = await client.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS - 500, () =>
      client.workflowService.getSystemInfo({}),
    );
    return `server ${info.serverVersion || 'unknown version'}, namespace ${client.options.namespace}`;
  });
}
