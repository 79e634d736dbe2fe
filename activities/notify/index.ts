/**
 * The coordinator's notification activities. Each notification is delivered by its own small
 * `notifyWorkflow` (workflows/notify.ts), started here with an id naming the event, its subject
 * and the hook: the eval or deploy workflow only waits for the start, never for a receiver, and a
 * retried start sends nothing twice. Delivery is one signed POST per attempt; Temporal retries it
 * with backoff while the receiver is down. Secrets are read here, never put in workflow history.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { NotificationHook } from '../../config/types.ts';
import { fetchText } from '../../lib/http.ts';
import type { Logger } from '../../lib/log.ts';
import { COORDINATOR_QUEUE } from '../../workflows/definitions.ts';
import type { notifyWorkflow } from '../../workflows/notify.ts';
import { deploymentFinishedData, evalFinishedData, failedBuilds } from './payloads.ts';
import type { Notification, NotifyActivities, NotifyEvent } from './types.ts';

export interface NotifyDeps {
  pool: Pool;
  client: Client;
  hooks: readonly NotificationHook[];
  /** Base of the dashboard links in the payloads (`api.public-url`). */
  publicUrl?: string;
  log?: Logger;
}

/** The headers of a delivery. */
export const SIGNATURE_HEADER = 'x-harmonia-ci-signature-256';
export const DELIVERY_HEADER = 'x-harmonia-ci-delivery';
export const EVENT_HEADER = 'x-harmonia-ci-event';
export const TIMESTAMP_HEADER = 'x-harmonia-ci-timestamp';

const DELIVERY_TIMEOUT_MS = 15_000;

/** `sha256=<hex HMAC-SHA256 of the body>`, as receivers recompute it. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function createNotifyActivities(deps: NotifyDeps): NotifyActivities {
  const publicUrl = (deps.publicUrl ?? 'http://localhost:8080').replace(/\/+$/, '');

  /** Starts one notify workflow per hook of `project` that wants `event`; how many were started. */
  const start = async (event: NotifyEvent, subject: string, project: string, data: Record<string, unknown>): Promise<number> => {
    let started = 0;
    for (const hook of deps.hooks.filter((h) => h.project === project && h.events.includes(event))) {
      const hookKey = createHash('sha256').update(hook.url).digest('hex').slice(0, 12);
      const notification: Notification = { deliveryId: randomUUID(), event, project, url: hook.url, data };
      try {
        await deps.client.workflow.start<typeof notifyWorkflow>('notifyWorkflow', {
          workflowId: `notify/${event}/${subject}/${hookKey}`,
          taskQueue: COORDINATOR_QUEUE,
          args: [notification],
          // Closed or not, a notification with this id was already sent: a retried start sends nothing.
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        });
        started++;
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      }
    }
    return started;
  };
  const wants = (project: string, event: NotifyEvent): boolean => deps.hooks.some((h) => h.project === project && h.events.includes(event));

  return {
    async notifyEvalFinished(evalId) {
      const subject = await evalFinishedData(deps.pool, evalId, publicUrl);
      if (!subject) return 0;
      let started = await start('eval-finished', `eval-${evalId}`, subject.project, subject.data);
      if (!wants(subject.project, 'build-failed')) return started;
      const evalData = subject.data.eval as Record<string, unknown>;
      for (const build of await failedBuilds(deps.pool, evalId, publicUrl)) {
        // One notification per failed build and project, however many evals of the project share it.
        started += await start('build-failed', `build-${build.buildId}`, subject.project, { ...build.data, eval: evalData });
      }
      return started;
    },

    async notifyDeploymentFinished(deploymentId) {
      const subject = await deploymentFinishedData(deps.pool, deploymentId, publicUrl);
      return subject ? start('deployment-finished', `deployment-${deploymentId}`, subject.project, subject.data) : 0;
    },

    async deliverNotification(notification) {
      const hook = deps.hooks.find((h) => h.project === notification.project && h.url === notification.url);
      if (!hook) {
        deps.log?.warn({ deliveryId: notification.deliveryId, url: notification.url }, 'notification dropped: its [[notifications]] table was removed');
        return;
      }
      const timestamp = new Date().toISOString();
      const body = JSON.stringify({ id: notification.deliveryId, event: notification.event, timestamp, project: notification.project, ...notification.data });
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'harmonia-ci',
        [EVENT_HEADER]: notification.event,
        [DELIVERY_HEADER]: notification.deliveryId,
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signBody((await hook.secretFile.read()).trim(), body),
      };
      let response: Response;
      try {
        ({ response } = await fetchText(hook.url, { method: 'POST', headers, body }, DELIVERY_TIMEOUT_MS));
      } catch (error) {
        throw ApplicationFailure.retryable(`POST ${hook.url}: ${(error as Error).message}`, 'NotificationUndelivered');
      }
      if (response.ok) return;
      const message = `POST ${hook.url} answered ${response.status}`;
      if (response.status >= 500 || response.status === 408 || response.status === 429) {
        const retryAfter = Number(response.headers.get('retry-after'));
        throw ApplicationFailure.create({
          message,
          type: 'NotificationUndelivered',
          ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { nextRetryDelay: retryAfter * 1000 } : {}),
        });
      }
      // 4xx: the receiver refuses this delivery (wrong secret, unknown URL); sending it again cannot help.
      throw ApplicationFailure.nonRetryable(message, 'NotificationRefused');
    },
  };
}
