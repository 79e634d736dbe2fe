/**
 * `harmonia-ci worker <role>`: one role of a fleet in this process, against configured services.
 * Each role's wiring lives in workers/main-<role>.ts; this file loads the configuration,
 * connects, routes Temporal's logs into pino, stops gracefully on SIGINT/SIGTERM (a second
 * signal exits at once) and fails with a message naming what is wrong.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Command } from 'commander';
import { temporalConnectionConfig } from '../../temporal/settings.ts';
import { NODE_NAME } from '../../activities/coordinator/node-records.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { ServerConfig } from '../../config/types.ts';
import { resolveSocketPath } from '../../daemon/protocol/pool.ts';
import { openDatabase, type Database } from '../../db/open.ts';
import { createLogger, routeTemporalLogs, type Logger } from '../../lib/log.ts';
import { connectTemporal, connectTemporalWorker, dataConverterOf } from '../../temporal/connection.ts';
import { startBuilderRole } from '../../workers/main-builder.ts';
import { startCoordinatorRole } from '../../workers/main-coordinator.ts';
import { startEvaluatorRole } from '../../workers/main-evaluator.ts';
import { startSignerRole } from '../../workers/main-signer.ts';
import { createWorkerMetrics, serveWorkerMetrics } from '../../workers/metrics.ts';
import { findFreePort } from '../../lib/ports.ts';
import type { RunningRole } from '../../workers/wiring.ts';
import { builderHostName } from '../local-workers.ts';
import { CliError } from '../errors.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';
import { DEV_TEMPORAL_ADDRESS } from '../operator.ts';

const ROLES = ['coordinator', 'evaluator', 'builder', 'signer'] as const;
type Role = (typeof ROLES)[number];

interface WorkerOptions {
  config?: string;
  host?: string;
  systems?: string;
  features?: string;
  maxJobs?: string;
  heartbeatInterval: string;
  substituter: string[];
  trustedPublicKey: string[];
  metricsPort?: string;
  metricsHost: string;
}

const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

async function runWorker(role: Role, options: WorkerOptions): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  if (options.systems !== undefined) env.HARMONIA_CI_BUILDER_SYSTEMS = options.systems;
  if (options.features !== undefined) env.HARMONIA_CI_BUILDER_FEATURES = options.features;
  if (options.maxJobs !== undefined) env.HARMONIA_CI_BUILDER_MAX_JOBS = options.maxJobs;
  if (options.substituter.length > 0) env.HARMONIA_CI_BUILDER_SUBSTITUTERS = options.substituter.join(',');
  if (options.trustedPublicKey.length > 0) env.HARMONIA_CI_CACHE_PUBLIC_KEYS = [env.HARMONIA_CI_CACHE_PUBLIC_KEYS, ...options.trustedPublicKey].filter(Boolean).join(',');
  const config = await loadServerConfig({ env, file: options.config });
  // An empty environment value counts as unset there; `--features ''` means none.
  if (options.features !== undefined && options.features.trim() === '') config.builder.features = [];
  const host = options.host ?? builderHostName();
  if ((role === 'builder' || role === 'evaluator') && !NODE_NAME.test(host)) {
    throw new CliError(`--host ${JSON.stringify(host)}: a node name is letters, digits, ".", "_" and "-", starting with a letter or digit`);
  }
  const heartbeatSeconds = Number(options.heartbeatInterval);
  if (!(heartbeatSeconds > 0)) throw new CliError(`--heartbeat-interval expects seconds above 0, got "${options.heartbeatInterval}"`);

  if ((role === 'coordinator' || role === 'evaluator') && !config.database.url) {
    throw new CliError(
      `the ${role} needs PostgreSQL: set DATABASE_URL or database.url (the embedded database of \`harmonia-ci dev\` serves only the dev process)`,
    );
  }

  const metricsPort = options.metricsPort === undefined ? undefined : Number(options.metricsPort);
  if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort <= 65535)) {
    throw new CliError(`--metrics-port expects a TCP port (0 to 65535; 0 picks a free one), got "${options.metricsPort}"`);
  }

  const log = createLogger({ level: config.log.level, name: role });
  const signals = watchStopSignals(log);
  // The SDK's exporter is part of the Runtime, installed once just below: it gets a loopback port of its own.
  const sdkMetricsPort = metricsPort === undefined ? undefined : await findFreePort();
  // The builder drains on SIGTERM in its own order (builds first, then their uploads).
  await routeTemporalLogs(log, { shutdownSignals: [], ...(sdkMetricsPort === undefined ? {} : { prometheusBindAddress: `127.0.0.1:${sdkMetricsPort}` }) });
  const metrics = metricsPort === undefined ? undefined : createWorkerMetrics();
  const served = metrics && (await serveWorkerMetrics({ host: options.metricsHost, port: metricsPort!, metrics, temporalUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` }));
  if (served) log.info(`metrics at ${served.url}`);
  const address = config.temporal.address ?? DEV_TEMPORAL_ADDRESS;
  let database: Database | undefined;
  let client: Client | undefined;
  let workerConnection: NativeConnection | undefined;
  try {
    if (role === 'coordinator' || role === 'evaluator') database = await openConfiguredDatabase(config);
    const connection = await temporalConnectionConfig(config.temporal, address);
    // Native first: if it fails, Temporal's runtime is left idle and lets the process end.
    workerConnection = await connectTemporalWorker(connection);
    client = await connectTemporal(connection);
    const ctx = { connection: workerConnection, namespace: config.temporal.namespace, bundleDir: join(config.stateDir, 'bundles'), dataConverter: dataConverterOf(connection) };
    const daemonSocket = resolveSocketPath();
    let running: RunningRole;
    try {
      if (role === 'coordinator') {
        running = await startCoordinatorRole({ config, ctx, client, pool: database!.pool, log });
      } else if (role === 'evaluator') {
        running = await startEvaluatorRole({ config, ctx, pool: database!.pool, daemonSocket, host, log, metrics });
      } else if (role === 'signer') {
        running = await startSignerRole({ config, ctx, log, metrics });
      } else {
        const identity = { host, systems: config.builder.systems, features: config.builder.features, maxJobs: config.builder.maxJobs };
        running = await startBuilderRole({ config, log, client, ctx, daemonSocket, identity, version: VERSION, heartbeatIntervalMs: heartbeatSeconds * 1000, metrics });
        log.info(`builder ${host}: ${identity.systems.join(', ')}; features ${identity.features.join(', ') || 'none'}; max jobs ${identity.maxJobs}`);
      }
    } catch (error) {
      // The message names the problem (a missing key, an unreachable cache); the log keeps the stack.
      log.debug({ err: error }, `the ${role} could not start`);
      throw new CliError(`the ${role} could not start: ${(error as Error).message}`);
    }
    log.info(`${role} worker running against Temporal ${address} (namespace ${config.temporal.namespace}); SIGTERM stops it gracefully`);
    await untilStopped(running, signals.first, log);
  } finally {
    signals.dispose();
    await served?.close();
    await workerConnection?.close().catch(() => undefined);
    await client?.connection.close().catch(() => undefined);
    await database?.close().catch(() => undefined);
  }
}

/** The configured database; the schema is migrated by `harmonia-ci migrate`, a worker only refuses one it does not understand. */
function openConfiguredDatabase(config: ServerConfig): Promise<Database> {
  return openDatabase({ url: config.database.url!, stateDir: config.stateDir, migrate: false });
}

/**
 * SIGINT and SIGTERM, listened to from the start: one that arrives while the role starts is not
 * lost (nor does it kill the process outright); a second one exits at once.
 */
function watchStopSignals(log: Logger): { first: Promise<NodeJS.Signals>; dispose(): void } {
  let received = false;
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const first = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      if (received) {
        log.warn(`${signal} again: exiting without waiting for running work`);
        process.exit(130);
      }
      received = true;
      resolve(signal);
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    first,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Waits for a stop signal (then stops gracefully) or for a worker to fail. */
async function untilStopped(running: RunningRole, signalled: Promise<NodeJS.Signals>, log: Logger): Promise<void> {
  try {
    const signal = await Promise.race([signalled, running.done]);
    log.info(`${signal}: stopping gracefully`);
    await Promise.race([running.stop(), running.done]);
    log.info('stopped');
  } catch (error) {
    throw new CliError(`worker failed: ${(error as Error).message}`);
  }
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Registers `harmonia-ci worker`. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .argument('<role>', `one of ${ROLES.join(', ')}`)
    .description('run one role of a fleet: coordinator (workflows, database), evaluator, builder or signer')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--host <name>', 'builder: the node name, also its upload queue; evaluator: its upload queue is host-evaluator-<name> (default: this host name)')
    .option('--systems <list>', 'builder: systems it builds for, comma-separated (default builder.systems)')
    .option('--features <list>', 'builder: system features it offers, comma-separated; "" for none (default builder.features)')
    .option('--max-jobs <n>', 'builder: builds at a time (default builder.max-jobs)')
    .option('--heartbeat-interval <seconds>', 'builder: seconds between heartbeats to the coordinator', '15')
    .option('--substituter <url>', 'builder, evaluator: where to read our binary cache when the signer runs elsewhere, e.g. the API\'s URL; repeatable (default builder.substituters, else api.public-url)', collect, [])
    .option('--trusted-public-key <key>', 'builder: a key whose signatures it trusts, "name:base64" (the signer\'s public key); repeatable (adds to cache.public-keys)', collect, [])
    .option('--metrics-port <port>', 'serve Prometheus metrics (this role\'s and the Temporal SDK\'s) at http://<metrics-host>:<port>/metrics; 0 picks a free port (default: off)')
    .option('--metrics-host <address>', 'address the metrics port listens on', '0.0.0.0')
    .action((role: string, options: WorkerOptions) =>
      withSetupErrorsAsCliErrors(async () => {
        if (!(ROLES as readonly string[]).includes(role)) throw new CliError(`unknown role "${role}"; expected one of ${ROLES.join(', ')}`);
        await runWorker(role as Role, options);
      }),
    );
}
