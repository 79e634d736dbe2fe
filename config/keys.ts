/**
 * Every leaf key of the server configuration, its kind, and the environment
 * variable that overrides it. The variable name is derived from the dotted key:
 * `limits.build-timeout` → `HARMONIA_CI_LIMITS_BUILD_TIMEOUT`.
 */

/** How an environment string becomes a configuration value, and how a relative path is resolved. */
export type KeyKind = 'string' | 'path' | 'location' | 'integer' | 'boolean' | 'list' | 'duration' | 'size' | 'substituters' | 'json';

export const SERVER_KEYS: ReadonlyArray<readonly [key: string, kind: KeyKind]> = [
  ['state-dir', 'path'],
  ['log.level', 'string'],
  ['database.url', 'string'],
  ['temporal.address', 'string'],
  ['temporal.namespace', 'string'],
  ['temporal.api-key-file', 'path'],
  ['temporal.codec-key-file', 'path'],
  ['temporal.tls.cert-file', 'path'],
  ['temporal.tls.key-file', 'path'],
  ['temporal.tls.ca-file', 'path'],
  ['temporal.tls.server-name', 'string'],
  ['api.host', 'string'],
  ['api.port', 'integer'],
  ['api.public-url', 'string'],
  ['api.cookie-secret-file', 'path'],
  ['cache.url', 'location'],
  ['cache.signing-key-file', 'path'],
  ['cache.public-keys', 'list'],
  ['cache.upstream', 'substituters'],
  ['cache.negative-ttl', 'duration'],
  ['cache.positive-ttl', 'duration'],
  ['cache.multipart-threshold', 'size'],
  ['cache.multipart-part-size', 'size'],
  ['s3.credentials-file', 'path'],
  ['s3.profile', 'string'],
  ['builder.systems', 'list'],
  ['builder.features', 'list'],
  ['builder.max-jobs', 'integer'],
  ['builder.substituters', 'list'],
  ['builder.verify-input-contents', 'boolean'],
  ['limits.build-timeout', 'duration'],
  ['limits.max-silent', 'duration'],
  ['limits.max-output-size', 'size'],
  ['limits.max-log-size', 'size'],
  ['limits.eval-timeout', 'duration'],
  ['limits.eval-memory', 'size'],
  ['limits.attempts', 'integer'],
  ['limits.builder-heartbeat-timeout', 'duration'],
  ['limits.log-tail', 'size'],
  ['limits.presigned-url-lifetime', 'duration'],
  ['limits.publish-deadline', 'duration'],
  ['forges.github.api-url', 'string'],
  ['forges.github.app-id', 'integer'],
  ['forges.github.private-key-file', 'path'],
  ['forges.github.webhook-secret-file', 'path'],
  ['forges.github.token-file', 'path'],
  ['forges.gitea.url', 'string'],
  ['forges.gitea.token-file', 'path'],
  ['forges.gitea.webhook-secret-file', 'path'],
  ['projects.scheduling-shares', 'integer'],
  ['projects.pr-trust', 'string'],
  ['projects.allow-ifd', 'boolean'],
  ['projects.statuses', 'string'],
  ['projects.git-credentials-dir', 'path'],
  // A list of tables has no flat form: in the environment it is JSON, `[{"project": …, "agent-url": …}]`.
  ['deployments', 'json'],
  ['notifications', 'json'],
  ['auth.admins', 'list'],
  ['auth.permission-ttl', 'duration'],
  ['auth.hide-private-outputs', 'boolean'],
  ['auth.github.url', 'string'],
  ['auth.github.client-id', 'string'],
  ['auth.github.client-secret-file', 'path'],
  ['auth.gitea.url', 'string'],
  ['auth.gitea.client-id', 'string'],
  ['auth.gitea.client-secret-file', 'path'],
];

/** Conventional variable names accepted as well, weaker than the `HARMONIA_CI_` form. */
export const ENV_ALIASES: Readonly<Record<string, readonly string[]>> = {
  'database.url': ['DATABASE_URL'],
  'temporal.address': ['TEMPORAL_ADDRESS'],
  'temporal.namespace': ['TEMPORAL_NAMESPACE'],
};

/** The `HARMONIA_CI_…` variable for a dotted key. */
export function envNameForKey(key: string): string {
  return `HARMONIA_CI_${key.replace(/[.-]/g, '_').toUpperCase()}`;
}
