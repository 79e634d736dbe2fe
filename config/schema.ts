/**
 * The server configuration schema. Keys are kebab-case as written in TOML; the
 * parsed result is camelCase (see config/types.ts). Defaults follow docs/architecture.md,
 * "Build states and limits".
 */
import { join } from 'node:path';
import { z } from 'zod';
import { CACHE_URL_EXPECTATION, parseCacheLocation } from './cache-location.ts';
import { duration, integer, list, matching, oneOf, secretFile, size, text, url } from './fields.ts';
import { camelize } from './camelize.ts';
import { deploymentsSchema } from './deploy-schema.ts';
import { notificationsSchema } from './notify-schema.ts';
import { STATUS_MODES } from './repo-schema.ts';
import { parsePublicKey } from '../daemon/core/signing.ts';

/** Values the defaults depend on, taken from the running machine. */
export interface DefaultsContext {
  cwd: string;
  /** Nix system of this machine, e.g. `x86_64-linux`. */
  system: string;
  cpus: number;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const PR_TRUST_LEVELS = ['everyone', 'collaborators', 'none'] as const;

const SYSTEM = /^[a-z0-9_]+-[a-z0-9_]+$/;
const FEATURE = /^[A-Za-z0-9_.+-]+$/;
const PUBLIC_KEY = /^[^:\s]+:[A-Za-z0-9+/]{43}=$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/;
// A person on a forge: the forge is part of the name, since logins are only unique within one forge.
const FORGE_USER = /^(github|gitea):[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A public key that also decodes to the 32 bytes of an Ed25519 key, with the decoder's reason when it does not. */
const publicKey = matching(PUBLIC_KEY, 'a Nix public key "name:base64"').superRefine((value, ctx) => {
  // A value of the wrong form has its issue already.
  if (!PUBLIC_KEY.test(value)) return;
  try {
    parsePublicKey(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `expected a Nix public key "name:base64": ${(error as Error).message}`, input: value });
  }
});

/** An upstream substituter such as cache.nixos.org: where it is, and the keys its narinfos must be signed with. */
const upstreamCache = z.strictObject(
  {
    url: url(['http', 'https', 'file']),
    'public-keys': z.array(publicKey, { error: 'expected a list of the cache\'s public keys "name:base64"' }).min(1, {
      error:
        'expected at least one public key: without one none of the cache\'s narinfos can be trusted ' +
        '(cache.nixos.org publishes "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=")',
    }),
  },
  { error: 'expected a table with url and public-keys (in the environment: a URL followed by its keys)' },
);

const cacheUrl = z.string({ error: `expected ${CACHE_URL_EXPECTATION}` }).transform((value, ctx) => {
  const location = parseCacheLocation(value);
  if ('problem' in location) {
    ctx.issues.push({ code: 'custom', message: location.problem, input: value });
    return z.NEVER;
  }
  return location;
});

const github = z
  .strictObject({
    // GitHub Enterprise Server: https://<host>/api/v3.
    'api-url': url(['http', 'https']).default('https://api.github.com'),
    'app-id': integer(1).optional(),
    'private-key-file': secretFile('forges.github.private-key-file').optional(),
    'webhook-secret-file': secretFile('forges.github.webhook-secret-file').optional(),
    'token-file': secretFile('forges.github.token-file').optional(),
  })
  .superRefine((value, ctx) => {
    if (value['app-id'] !== undefined && value['private-key-file'] === undefined) {
      ctx.addIssue({ code: 'custom', path: ['private-key-file'], message: 'is required when forges.github.app-id is set' });
    }
    if (value['app-id'] === undefined && value['token-file'] === undefined) {
      ctx.addIssue({ code: 'custom', path: ['app-id'], message: 'expected app-id with private-key-file (a GitHub App) or token-file' });
    }
  });

/** An OAuth application registered on a forge, whose users may log in to the dashboard. */
const oauthApp = (forge: string, defaultUrl?: string) =>
  z.strictObject({
    // Where the browser is sent to authorize: the forge's web address, not its API.
    url: defaultUrl ? url(['http', 'https']).default(defaultUrl) : url(['http', 'https']).optional(),
    'client-id': text('the OAuth application\'s client id'),
    'client-secret-file': secretFile(`auth.${forge}.client-secret-file`),
  });

const gitea = z.strictObject({
  url: url(['http', 'https']),
  'token-file': secretFile('forges.gitea.token-file'),
  'webhook-secret-file': secretFile('forges.gitea.webhook-secret-file').optional(),
});

/** Builds the schema; defaults that depend on the machine come from `context`. */
export function serverConfigSchema(context: DefaultsContext) {
  return z
    .strictObject({
      'state-dir': text('a directory path').default(join(context.cwd, '.state')),
      log: z.strictObject({ level: oneOf(LOG_LEVELS).default('info') }).prefault({}),
      database: z
        .strictObject({ url: url(['postgres', 'postgresql']).optional() })
        .prefault({}),
      temporal: z
        .strictObject({
          address: matching(HOST_PORT, 'host:port, e.g. "temporal.example.org:7233"').optional(),
          namespace: text('a Temporal namespace name').default('default'),
          'api-key-file': secretFile('temporal.api-key-file').optional(),
          // Encrypts every payload (histories hold presigned URLs and log tails): temporal/codec.ts.
          'codec-key-file': secretFile('temporal.codec-key-file').optional(),
          tls: z
            .strictObject({
              'cert-file': secretFile('temporal.tls.cert-file').optional(),
              'key-file': secretFile('temporal.tls.key-file').optional(),
              'ca-file': secretFile('temporal.tls.ca-file').optional(),
              'server-name': text('a host name').optional(),
            })
            .refine((tls) => (tls['cert-file'] === undefined) === (tls['key-file'] === undefined), {
              path: ['key-file'],
              error: 'expected cert-file and key-file together (client certificate and its key)',
            })
            .optional(),
        })
        .prefault({}),
      api: z
        .strictObject({
          host: text('a host name or IP address').default('127.0.0.1'),
          port: integer(0, 65535).default(8080),
          'public-url': url(['http', 'https']).optional(),
          // Signs and encrypts the login cookie; at least 32 characters.
          'cookie-secret-file': secretFile('api.cookie-secret-file').optional(),
        })
        .prefault({}),
      cache: z
        .strictObject({
          url: cacheUrl.optional(),
          'signing-key-file': secretFile('cache.signing-key-file').optional(),
          'public-keys': list(PUBLIC_KEY, 'a Nix public key "name:base64"').default([]),
          // Asked in order, after our own cache, when planning and when a builder substitutes.
          upstream: z
            .array(upstreamCache, { error: 'expected a list of [[cache.upstream]] tables, each with url and public-keys' })
            .default([]),
          // How long a narinfo lookup's answer is reused when planning: a miss briefly, a hit longer.
          'negative-ttl': duration().prefault('30s'),
          'positive-ttl': duration().prefault('10m'),
          // Uploads to S3 larger than this go in parts of multipart-part-size (one PUT carries at most 5 GB).
          'multipart-threshold': size({ bytes: 5 * 1024 ** 3, written: '5G' }).prefault('512M'),
          'multipart-part-size': size({ bytes: 5 * 1024 ** 3, written: '5G' }).prefault('64M'),
        })
        .prefault({}),
      s3: z
        .strictObject({
          'credentials-file': secretFile('s3.credentials-file').optional(),
          profile: text('a profile name').default('default'),
        })
        .prefault({}),
      builder: z
        .strictObject({
          systems: list(SYSTEM, 'a Nix system such as "x86_64-linux"').default([context.system]),
          features: list(FEATURE, 'a system feature such as "big-parallel"').default(['benchmark', 'big-parallel']),
          'max-jobs': integer(1).default(context.cpus),
          // Where this builder (and an evaluator) reads our cache when it runs apart from the signer:
          // the first URL is ours (the API's cache routes, or `cache serve`); unset, api.public-url.
          substituters: z.array(url(['http', 'https', 'file']), { error: 'expected a list of cache URLs (http://, https:// or file://)' }).default([]),
          // Hash every input's contents before a build instead of trusting the store's registration:
          // for builders that run untrusted code, which could change a store path in place.
          'verify-input-contents': z.boolean({ error: 'expected true or false' }).default(false),
        })
        .prefault({}),
      limits: z
        .strictObject({
          'build-timeout': duration().prefault('4h'),
          'max-silent': duration().prefault('30m'),
          'max-output-size': size().prefault('4G'),
          'max-log-size': size().prefault('64M'),
          'eval-timeout': duration().prefault('1h'),
          // Address space of each process evaluating untrusted code (a pull request from outside).
          'eval-memory': size().prefault('4G'),
          attempts: integer(1, 100).default(3),
          // A builder silent this long is presumed dead, and its build goes to another builder.
          'builder-heartbeat-timeout': duration().prefault('2m'),
          // A builder without database access sends its tails through Temporal, whose payloads are small.
          'log-tail': size({ bytes: 256 * 1024, written: '256K' }).prefault('64K'),
          'presigned-url-lifetime': duration().prefault('15m'),
          // How long a built output may wait for storage (S3 down) before its build is failed for it.
          'publish-deadline': duration().prefault('6h'),
        })
        .prefault({}),
      forges: z.strictObject({ github: github.optional(), gitea: gitea.optional() }).prefault({}),
      auth: z
        .strictObject({
          // Operators: every right on every project, and the nodes.
          admins: list(FORGE_USER, 'a forge user such as "github:alice" or "gitea:bob"').default([]),
          // How long a person's permission on a repository, as the forge reported it, is trusted.
          'permission-ttl': duration().prefault('5m'),
          // Also hide from the API's cache the narinfos and NARs of paths only private projects built.
          'hide-private-outputs': z.boolean({ error: 'expected true or false' }).default(false),
          github: oauthApp('github', 'https://github.com').optional(),
          gitea: oauthApp('gitea').optional(),
        })
        .prefault({}),
      projects: z
        .strictObject({
          'scheduling-shares': integer(1).default(100),
          'pr-trust': oneOf(PR_TRUST_LEVELS).default('collaborators'),
          // A repository's .harmonia-ci.toml may turn it off, never on.
          'allow-ifd': z.boolean({ error: 'expected true or false' }).default(true),
          // Commit statuses per attribute; a repository's .harmonia-ci.toml may choose otherwise.
          statuses: oneOf(STATUS_MODES).default('summary'),
          // git-credential-store files <owner>/<repo>, each used only for that project's trusted evaluations.
          'git-credentials-dir': text('a directory path').optional(),
        })
        .prefault({}),
      deployments: deploymentsSchema,
      notifications: notificationsSchema,
    })
    .transform((value) =>
      camelize({
        ...value,
        api: { ...value.api, 'public-url': value.api['public-url'] ?? `http://localhost:${value.api.port}` },
        cache: { ...value.cache, url: value.cache.url ?? { kind: 'local' as const, path: join(value['state-dir'], 'cache') } },
      }),
    );
}
