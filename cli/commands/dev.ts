/**
 * `harmonia-ci dev`: everything on one machine. Starts what is not configured (a Temporal dev
 * server, an embedded PostgreSQL, a nix-daemon), migrates, runs the coordinator, evaluator, signer
 * and a builder in this process, serves the API and the binary cache, and on
 * Ctrl-C stops what it started, newest first, and nothing it did not start.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { checkDatabase } from '../../db/health.ts';
import type { ComponentHealth, HealthReport } from '../../lib/health.ts';
import { checkTemporal } from '../../temporal/health.ts';
import { startApiServer } from '../../api/server.ts';
import { ApiSetupError } from '../../api/errors.ts';
import { ConfigError, SecretFileError } from '../../config/errors.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { ServerConfig } from '../../config/types.ts';
import * as databaseErrors from '../../db/errors.ts';
import { createLogger } from '../../lib/log.ts';
import { TemporalSetupError } from '../../temporal/errors.ts';
import { applyCacheFlags, describeCache, openServedCache, withCacheOptions, type CacheFlags } from '../cache-options.ts';
import { CliError } from '../errors.ts';
import { startLocalWorkers } from '../local-workers.ts';
import { startLocalStack } from '../stack.ts';

interface DevOptions extends CacheFlags {
  config?: string;
  port?: string;
  stateDir?: string;
  temporalPort: string;
  ui: boolean;
  once: boolean;
}

/** Something dev started, and how to stop it; a quiet one reports its own parts. */
interface Started {
  name: string;
  stop(): Promise<void>;
  quiet?: boolean;
}

const out = (line = ''): boolean => process.stdout.write(`${line}\n`);

function parsePort(value: string, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`${flag} expects a port number from 0 to 65535, got "${value}"`);
  return port;
}

function healthLine(name: string, health: ComponentHealth): string {
  return `  ${name.padEnd(13)} ${health.status.padEnd(15)} ${health.message}`;
}

function printReport(report: HealthReport): void {
  out(`health: ${report.status}${report.failed.length ? ` (failed: ${report.failed.join(', ')})` : ''}`);
  for (const [name, component] of Object.entries(report.components)) out(healthLine(name, component));
}

/** Runs `dev` until a signal (or, with --once, until the health report is printed); returns the exit code. */
async function runDev(options: DevOptions): Promise<number> {
  // Flags win over the environment and the config file; absent flags leave them alone.
  const env: Record<string, string | undefined> = { ...process.env };
  if (options.stateDir !== undefined) env.HARMONIA_CI_STATE_DIR = resolve(options.stateDir);
  if (options.port !== undefined) env.HARMONIA_CI_API_PORT = String(parsePort(options.port, '--port'));
  applyCacheFlags(options, env);
  const config: ServerConfig = await loadServerConfig({ env, file: options.config });
  const log = createLogger({ level: config.log.level });

  const started: Started[] = [];
  let stopRequested = false;
  let wakeOnStop = (): void => {};
  const stopSignal = new Promise<void>((resolvePromise) => {
    wakeOnStop = resolvePromise;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      out(`\n${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stopRequested = true;
    out(`\n${signal}: stopping ${started.map((s) => s.name).reverse().join(', ') || 'start-up'}`);
    wakeOnStop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const stopAll = async (): Promise<void> => {
    for (let item = started.pop(); item; item = started.pop()) {
      try {
        await item.stop();
        if (!item.quiet) out(`stopped ${item.name}`);
      } catch (error) {
        out(`could not stop ${item.name} cleanly: ${(error as Error).message}`);
      }
    }
  };

  try {
    out(`harmonia-ci dev: state in ${config.stateDir}`);
    const stack = await startLocalStack({
      config,
      log,
      ui: options.ui,
      temporalPort: parsePort(options.temporalPort, '--temporal-port'),
      report: () => undefined,
      onStopped: (name) => out(`stopped ${name}`),
    });
    started.push({ name: 'local stack', stop: () => stack.stop(), quiet: true });
    const temporalUiUrl = stack.temporalUiUrl;
    const temporal = stack.client;
    const { pool } = stack.database;
    const how = config.temporal.address ? `configured: ${config.temporal.address}` : `dev server at ${stack.temporalAddress}`;
    out(healthLine('temporal', await checkTemporal(temporal)) + ` (${how})`);
    const where = stack.database.embedded ? `embedded PGlite in ${join(config.stateDir, 'pglite')}` : 'configured';
    out(healthLine('database', await checkDatabase(pool)) + ` (${where})`);
    out(`  ${'nix'.padEnd(13)} ${'ok'.padEnd(15)} daemon at ${stack.daemonSocket}`);
    if (stopRequested) return 130;

    const workers = await startLocalWorkers({ stack, config, log });
    started.push({ name: 'workers', stop: () => workers.stop() });
    out(`  ${'workers'.padEnd(13)} ${'ok'.padEnd(15)} coordinator, evaluator, signer, builder ${workers.host} (${config.builder.systems.join(', ')})`);
    if (stopRequested) return 130;

    const cache = await openServedCache(config);
    started.push({ name: 'binary cache', stop: () => cache.backend.close() });

    const api = await startApiServer({
      config,
      log,
      deps: { pool, temporal, cacheStorage: cache.backend },
      temporalUiUrl,
      host: config.api.host,
      port: config.api.port,
    });
    started.push({ name: 'API', stop: () => api.close() });
    out(`  ${'api'.padEnd(13)} ${'ok'.padEnd(15)} listening on ${api.url}`);

    out();
    out(`  dashboard        ${api.url}/ci/`);
    out(`  Temporal Web UI  ${temporalUiUrl ?? (options.ui ? 'served by the configured cluster' : 'off (--no-ui)')}`);
    out(`  healthz          ${api.url}/healthz`);
    for (const line of describeCache({ ...cache, description: cache.backend.description }, api.url, 17)) out(`  ${line}`);
    out();

    const response = await fetch(`${api.url}/healthz`);
    const report = (await response.json()) as HealthReport;
    printReport(report);
    if (options.once) return report.status === 'ok' ? 0 : 1;

    out('\nrunning; press Ctrl-C to stop');
    await stopSignal;
    return 0;
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// Errors whose message already names the problem and the fix: shown without a stack.
const SETUP_ERRORS = [ConfigError, SecretFileError, TemporalSetupError, ApiSetupError, ...Object.values(databaseErrors)];

/** Runs a command body, turning setup errors (bad config, unreachable servers) into CliErrors. */
export async function withSetupErrorsAsCliErrors(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (SETUP_ERRORS.some((type) => error instanceof type)) throw new CliError((error as Error).message);
    throw error;
  }
}

/** Registers `harmonia-ci dev`. */
export function registerDev(program: Command): void {
  withCacheOptions(program.command('dev'))
    .description('run everything on this machine: Temporal dev server and embedded PostgreSQL unless configured, then the API')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--port <port>', 'API port (default 8080, or api.port / HARMONIA_CI_API_PORT; 0 picks a free one)')
    .option('--state-dir <dir>', 'where the Temporal SQLite file and the embedded database live (default .state)')
    .option('--temporal-port <port>', 'gRPC port of the Temporal dev server; its Web UI listens 1000 above (0 picks free ones)', '7233')
    .option('--no-ui', 'start the Temporal dev server without its Web UI')
    .option('--once', 'start everything, print the health report, stop; exit 0 only if healthy')
    .action((options: DevOptions) =>
      withSetupErrorsAsCliErrors(async () => {
        process.exitCode = await runDev(options);
      }),
    );
}
