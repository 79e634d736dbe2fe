/**
 * Outgoing webhooks (workflow-safe: types only).
 *
 * - hook: one `[[notifications]]` table: a project, a URL, a secret, the events it wants.
 * - notification: one event for one hook, delivered by its own `notify/…` workflow.
 * - delivery id: names a notification across its retries, so a receiver can drop repeats.
 */

export type NotifyEvent = 'eval-finished' | 'build-failed' | 'deployment-finished';

/** What a notify workflow delivers: the event's data; the signature and timestamp are added per attempt. */
export interface Notification {
  deliveryId: string;
  event: NotifyEvent;
  project: string;
  /** The hook's URL; its secret is looked up by project and URL when sending, never kept in history. */
  url: string;
  data: Record<string, unknown>;
}

/** The coordinator's notification activities (activities/notify/index.ts). */
export interface NotifyActivities {
  /** Starts the eval-finished and build-failed notifications of a finished eval; how many. */
  notifyEvalFinished(evalId: string): Promise<number>;
  /** Starts the deployment-finished notifications of a finished deployment; how many. */
  notifyDeploymentFinished(deploymentId: string): Promise<number>;
  /** Sends one signed POST; throws a retryable failure while the receiver is down or answers 5xx. */
  deliverNotification(notification: Notification): Promise<void>;
}
