/**
 * notifyWorkflow — `notify/<event>/<subject>/<hook>`: delivers one notification. Its own
 * workflow so that a receiver that is down for hours delays only its notification: the activity
 * is retried with backoff (Temporal's retry policy) for up to a day, and the eval or deploy
 * workflow that started it has long moved on.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Notification, NotifyActivities } from '../activities/notify/types.ts';
import { COORDINATOR_QUEUE } from './definitions.ts';

const sender = proxyActivities<NotifyActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', nonRetryableErrorTypes: ['NotificationRefused'] },
});

/** Delivered, or why not: a refusal or a day of failed attempts ends the workflow without failing it. */
export async function notifyWorkflow(notification: Notification): Promise<'delivered' | 'undelivered'> {
  setCurrentDetails(`${notification.event} for **${notification.project}** to ${notification.url}`);
  try {
    await sender.deliverNotification(notification);
    return 'delivered';
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    const cause = error.cause instanceof ApplicationFailure ? error.cause.message : error.message;
    setCurrentDetails(`${notification.event} for **${notification.project}** to ${notification.url}: undelivered (${cause})`);
    return 'undelivered';
  }
}
