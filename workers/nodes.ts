/**
 * A builder's side of its node workflow (workflows/node.ts): it holds no database credentials,
 * so registration, heartbeats, the draining flag and live log tails all go through Temporal.
 * Heartbeats and tails are signals (with start: the first one creates the workflow); the
 * draining flag is read with a query every couple of seconds. Nothing here ever throws into a
 * build: a lost heartbeat or tail is logged and the next one tries again.
 */
import type { Client } from '@temporalio/client';
import type { BuildLogSink } from '../activities/builder/index.ts';
import type { NodeHeartbeat } from '../activities/types.ts';
import type { Logger } from '../lib/log.ts';
import { COORDINATOR_QUEUE, nodeHeartbeatSignal, nodeLogTailSignal, nodeStatusQuery, nodeWorkflowId } from '../workflows/definitions.ts';
import type { nodeWorkflow, NodeWorkflowInput } from '../workflows/node.ts';

export const HEARTBEAT_INTERVAL_MS = 15_000;
export const STATUS_INTERVAL_MS = 2_000;
/** Longest wait for one call to Temporal, so a stuck call never holds up the next heartbeat. */
const CALL_TIMEOUT_MS = 10_000;

export interface NodeAgentOptions {
  client: Client;
  beat: NodeHeartbeat;
  log: Logger;
  /** Told when the node workflow's draining flag differs from what was last reported (initially `false`). */
  onDrainingChange(draining: boolean): void;
  heartbeatIntervalMs?: number;
  statusIntervalMs?: number;
}

export interface NodeAgent {
  /** Resolves once the draining flag is known (or after `timeoutMs`): a builder drained before a restart stays drained. */
  firstStatus(timeoutMs: number): Promise<boolean>;
  /** Live log tails through the coordinator. */
  logSink: BuildLogSink;
  stop(): Promise<void>;
}

export function startNodeAgent(options: NodeAgentOptions): NodeAgent {
  const { client, beat, log } = options;
  const workflowId = nodeWorkflowId(beat.name);
  const stopping = new AbortController();
  let draining: boolean | undefined;
  let reported = false;
  let heartbeatFailing = false;
  let statusFailing = false;

  const withDeadline = <T>(call: () => Promise<T>): Promise<T> => client.connection.withDeadline(Date.now() + CALL_TIMEOUT_MS, call);
  const start = { workflowId, taskQueue: COORDINATOR_QUEUE, args: [{ name: beat.name }] as [NodeWorkflowInput], staticSummary: `builder ${beat.name}` };
  const sendHeartbeat = (): Promise<unknown> =>
    withDeadline(() =>
      client.workflow.signalWithStart<typeof nodeWorkflow, [NodeHeartbeat]>('nodeWorkflow', { ...start, signal: nodeHeartbeatSignal, signalArgs: [beat] }),
    );
  const sendTail = async (drvPath: string, text: string): Promise<void> => {
    try {
      await withDeadline(() =>
        client.workflow.signalWithStart<typeof nodeWorkflow, [{ drvPath: string; text: string }]>('nodeWorkflow', {
          ...start,
          signal: nodeLogTailSignal,
          signalArgs: [{ drvPath, text }],
        }),
      );
    } catch (error) {
      log.warn({ err: error }, `could not send the log tail of ${drvPath}`);
    }
  };

  const heartbeat = async (): Promise<void> => {
    try {
      await sendHeartbeat();
      if (heartbeatFailing) log.info('heartbeats reach the coordinator again');
      heartbeatFailing = false;
    } catch (error) {
      if (!heartbeatFailing) log.warn({ err: error }, `heartbeat of node ${beat.name} failed; retrying every interval`);
      heartbeatFailing = true;
    }
  };

  const pollStatus = async (): Promise<void> => {
    try {
      const status = await withDeadline(() => client.workflow.getHandle(workflowId).query(nodeStatusQuery));
      statusFailing = false;
      if (status.draining === undefined) return;
      draining = status.draining;
      if (draining !== reported) {
        reported = draining;
        options.onDrainingChange(draining);
      }
    } catch (error) {
      // Not found: the first heartbeat has not created the workflow yet.
      if ((error as Error).name !== 'WorkflowNotFoundError' && !statusFailing) {
        log.warn({ err: error }, `cannot read the draining flag of node ${beat.name}; retrying`);
        statusFailing = true;
      }
    }
  };

  const loops = [
    every(options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS, heartbeat, stopping.signal),
    every(options.statusIntervalMs ?? STATUS_INTERVAL_MS, pollStatus, stopping.signal),
  ];

  const sent = new Map<string, string>();

  return {
    async firstStatus(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (draining === undefined && Date.now() < deadline && !stopping.signal.aborted) {
        await pollStatus();
        if (draining === undefined) await sleep(200, stopping.signal);
      }
      return draining ?? false;
    },
    logSink: {
      async tail(drvPath, text) {
        if (sent.get(drvPath) === text) return;
        sent.set(drvPath, text);
        await sendTail(drvPath, text);
      },
      async finished(drvPath, tail) {
        sent.delete(drvPath);
        await sendTail(drvPath, tail.text());
      },
    },
    async stop() {
      stopping.abort();
      await Promise.all(loops);
    },
  };
}

/** Runs `task` now and then every `intervalMs` after it ends, until `signal` aborts. */
async function every(intervalMs: number, task: () => Promise<void>, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await task();
    await sleep(intervalMs, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
