/**
 * Outgoing webhooks (`[[notifications]]` in the server configuration): for `project`, POST the
 * chosen events as signed JSON to `url`. Operators set them, as with deployments: a repository
 * must not choose where its results are sent.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { camelize } from './camelize.ts';
import { oneOf, text, url } from './fields.ts';
import { SecretFile } from './secrets.ts';

/** The events a webhook can ask for. */
export const NOTIFY_EVENTS = ['eval-finished', 'build-failed', 'deployment-finished'] as const;

export const notificationSchema = z
  .strictObject({
    project: text('a project name, as `harmonia-ci projects` lists it'),
    url: url(['http', 'https']),
    // Absolute: the coordinator that reads it may run anywhere, and list entries are not resolved against the file.
    'secret-file': text('the absolute path of a file holding the secret the receiver verifies signatures with')
      .refine((path) => isAbsolute(path), { error: 'expected an absolute path, e.g. "/run/secrets/ci-webhook"' })
      .transform((path) => new SecretFile('notifications.secret-file', path)),
    events: z
      .array(oneOf(NOTIFY_EVENTS), { error: `expected a list of events: ${NOTIFY_EVENTS.map((e) => JSON.stringify(e)).join(', ')}` })
      .min(1, { error: 'expected at least one event' })
      .default([...NOTIFY_EVENTS]),
  })
  .transform((hook) => camelize(hook));

export const notificationsSchema = z.array(notificationSchema, { error: 'expected a list of [[notifications]] tables' }).default([]);
