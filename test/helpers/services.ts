/**
 * Starts every service the test suite talks to, in parallel, and returns the environment
 * variables that point tests at them. Used by test/run.ts and scripts/services-up.ts.
 */
import { mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { startTemporalDevServer } from '../../temporal/dev-server.ts';
import { startNixDaemon } from '../../lib/nix-daemon.ts';
import { checkPostgres, DEFAULT_TEST_DATABASE_URL, redactDatabaseUrl } from './postgres.ts';
import { startSeaweedS3 } from './seaweedfs.ts';

export interface ServiceLog {
  /** One line per service as it becomes ready, and start-up failures. */
  info(message: string): void;
  warn(message: string): void;
  /** Chatty server output; usually discarded. */
  debug(message: string): void;
}

export interface TestServices {
  /** Variables to export to tests (see the brief's list). */
  env: Record<string, string>;
  /** Stops everything started here; safe to call more than once. */
  stop(): Promise<void>;
}

export const TEST_NAMESPACE = 'default';

/**
 * Sets environment defaults in this process (inherited by the tests it spawns). libpq
 * (psql) falls back to the login name when a URL names no user; node-postgres reads only
 * PGUSER or USER, which minimal containers leave unset. The AWS SDK's notice about future
 * Node versions is noise in test output. Returns the variables it set.
 */
export function applyTestEnvironmentDefaults(): Record<string, string> {
  const set: Record<string, string> = {};
  if (!process.env.PGUSER && !process.env.USER) set.PGUSER = userInfo().username;
  if (!process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED) set.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  Object.assign(process.env, set);
  return set;
}

interface Started {
  env: Record<string, string>;
  stop?: () => Promise<void>;
}

/** Starts Temporal, SeaweedFS and nix-daemon under `dir` and checks PostgreSQL at DATABASE_URL. */
export async function startTestServices(options: { dir: string; log: ServiceLog; databaseUrl?: string; temporalUi?: boolean }): Promise<TestServices> {
  const { dir, log } = options;
  const databaseUrl = options.databaseUrl ?? DEFAULT_TEST_DATABASE_URL;
  const t0 = performance.now();
  const ready = (name: string, where: string): void => log.info(`${name.padEnd(10)} ${where}  (${Math.round(performance.now() - t0)} ms)`);

  const launches: Array<Promise<Started>> = [
    startTemporalDevServer({
      namespace: TEST_NAMESPACE,
      port: 0,
      ...(options.temporalUi ? { uiPort: 0 } : { headless: true }),
      // Its own start-up line is replaced by the uniform one below.
      log: { info: () => undefined, warn: (m) => log.warn(m), debug: (m) => log.debug(m) },
    }).then((server) => {
      ready('temporal', `${server.address} namespace ${TEST_NAMESPACE}${server.uiUrl ? `, Web UI ${server.uiUrl}` : ''}`);
      return { env: { TEMPORAL_ADDRESS: server.address, HARMONIA_CI_TEMPORAL_NAMESPACE: TEST_NAMESPACE }, stop: server.stop };
    }),
    mkdir(join(dir, 'seaweedfs'), { recursive: true })
      .then(() => startSeaweedS3({ dir: join(dir, 'seaweedfs') }))
      .then((s3) => {
        ready('seaweedfs', `${s3.endpoint} bucket ${s3.bucket}`);
        return {
          env: {
            HARMONIA_TEST_S3_ENDPOINT: s3.endpoint,
            HARMONIA_TEST_S3_BUCKET: s3.bucket,
            HARMONIA_TEST_S3_ACCESS_KEY_ID: s3.accessKeyId,
            HARMONIA_TEST_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          },
          stop: s3.stop,
        };
      }),
    startNixDaemon({ dir }).then((daemon) => {
      ready('nix-daemon', daemon.socketPath);
      return { env: { NIX_DAEMON_SOCKET_PATH: daemon.socketPath }, stop: daemon.stop };
    }),
    checkPostgres(databaseUrl).then((version) => {
      ready('postgres', `${redactDatabaseUrl(databaseUrl)} (server ${version})`);
      return { env: { DATABASE_URL: databaseUrl } };
    }),
  ];

  const results = await Promise.allSettled(launches);
  const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= Promise.all(started.map((service) => service.stop?.())).then(() => undefined);
    return stopped;
  };

  const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
  if (failures.length > 0) {
    await stop();
    const messages = failures.map((error) => (error instanceof Error ? error.message : String(error)));
    throw new Error(`could not start the test services:\n- ${messages.join('\n- ')}`);
  }
  return { env: Object.assign({}, ...started.map((service) => service.env)) as Record<string, string>, stop };
}
