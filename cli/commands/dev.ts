/**
 * `harmonia-ci dev`: everything on one machine. Starts what is not configured (a Temporal dev
 * server, an embedded PostgreSQL, a nix-daemon), migrates, runs the coordinator, evaluator, signer
 * and a builder in this process, serves the API and the binary cache, and on
 * Ctrl-C stops what it started, newest first, and nothing it did not start.
 *
 * `--roles` runs only some of them: without `builder`, builds wait for builders started elsewhere
 * (`harmonia-ci worker builder`, the line dev prints), and the evaluator publishes the `.drv`
 * closure of what is to be built to the cache those builders substitute from.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { checkDatabase } from '../../db/health.ts';
import type { ComponentHealth, HealthReport } from '../../lib/health.ts';
import { checkTemporal } from '../../temporal/health.ts';
import { startApiServer, type ApiServer } from '../../api/server.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { ServerConfig } from '../../config/types.ts';
import { createLogger } from '../../lib/log.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';
import { applyCacheFlags, describeCache, openServedCache, withCacheOptions, type CacheFlags } from '../cache-options.ts';
import { CliError } from '../errors.ts';
import { startLocalWorkers, type LocalWorkers } from '../local-workers.ts';
import { startLocalStack, type LocalStack } from '../stack.ts';

interface DevOptions extends CacheFlags {
  config?: string;
  roles: string;
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

export const DEV_ROLES = ['api', 'coordinator', 'evaluator', 'signer', 'builder'] as const;
export type DevRole = (typeof DEV_ROLES)[number];

/** `--roles api,coordinator`: the roles named, checked against the ones dev can run. */
export function parseRoles(value: string): Set<DevRole> {
  const names = value.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) throw new CliError(`--roles expects a comma-separated list of ${DEV_ROLES.join(', ')}; got "${value}"`);
  const unknown = names.filter((name) => !(DEV_ROLES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new CliError(`unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `"${name}"`).join(', ')} in --roles; the roles are ${DEV_ROLES.join(', ')}`);
  }
  return new Set(names as DevRole[]);
}

/** A shell word: quoted only when it has to be. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@+,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

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
  const roles = parseRoles(options.roles);
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

    const workerRoles = DEV_ROLES.filter((role) => role !== 'api' && roles.has(role));
    let workers: LocalWorkers | undefined;
    if (workerRoles.length > 0) {
      const running = await startLocalWorkers({
        stack,
        config,
        log,
        coordinator: roles.has('coordinator'),
        evaluator: roles.has('evaluator'),
        signer: roles.has('signer'),
        builder: roles.has('builder'),
        // Builders elsewhere may have stores of their own: what they build must be in the cache first.
        publishClosure: roles.has('evaluator') && !roles.has('builder'),
      });
      workers = running;
      started.push({ name: 'workers', stop: () => running.stop() });
      const names = workerRoles.map((role) => (role === 'builder' ? `builder ${running.host} (${config.builder.systems.join(', ')})` : role));
      const closure = roles.has('evaluator') && !roles.has('builder') ? '; the evaluator publishes .drv closures for builders elsewhere' : '';
      out(`  ${'workers'.padEnd(13)} ${'ok'.padEnd(15)} ${names.join(', ')}${closure}`);
    } else {
      out(`  ${'workers'.padEnd(13)} ${'off'.padEnd(15)} none in this process (--roles ${options.roles})`);
    }
    if (stopRequested) return 130;

    let api: ApiServer | undefined;
    let publicKey = workers?.cache?.publicKey;
    if (roles.has('api')) {
      const cache = await openServedCache(config);
      started.push({ name: 'binary cache', stop: () => cache.backend.close() });
      publicKey ??= cache.publicKey;

      const server = await startApiServer({
        config,
        log,
        deps: { pool, temporal, cacheStorage: cache.backend },
        temporalUiUrl,
        host: config.api.host,
        port: config.api.port,
      });
      api = server;
      started.push({ name: 'API', stop: () => server.close() });
      out(`  ${'api'.padEnd(13)} ${'ok'.padEnd(15)} listening on ${server.url}`);

      out();
      out(`  dashboard        ${server.url}/ci/`);
      out(`  Temporal Web UI  ${temporalUiUrl ?? (options.ui ? 'served by the configured cluster' : 'off (--no-ui)')}`);
      out(`  healthz          ${server.url}/healthz`);
      for (const line of describeCache({ ...cache, description: cache.backend.description }, server.url, 17)) out(`  ${line}`);
    }
    if (!roles.has('builder')) {
      out();
      for (const line of builderInstructions(config, stack, api?.url, publicKey ?? config.cache.publicKeys[0])) out(`  ${line}`);
    }
    out();

    if (api) {
      const response = await fetch(`${api.url}/healthz`);
      const report = (await response.json()) as HealthReport;
      printReport(report);
      if (options.once) return report.status === 'ok' ? 0 : 1;
    } else if (options.once) {
      return 0;
    }

    out('\nrunning; press Ctrl-C to stop');
    await stopSignal;
    return 0;
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The command that adds a builder on another machine: Temporal as this dev reaches it, and our
 * cache (the API's cache routes) with the key it is signed with.
 */
function builderInstructions(config: ServerConfig, stack: LocalStack, apiUrl: string | undefined, publicKey: string | undefined): string[] {
  // Without an API here, builders read the cache where the configuration says the API runs.
  const substituter = apiUrl ?? config.api.publicUrl;
  const env = [`TEMPORAL_ADDRESS=${stack.temporalAddress}`, ...(stack.namespace !== 'default' ? [`TEMPORAL_NAMESPACE=${stack.namespace}`] : [])];
  const command = [...env, 'harmonia-ci', 'worker', 'builder', '--host', '<name>', '--substituter', substituter, ...(publicKey ? ['--trusted-public-key', publicKey] : [])];
  const lines = [
    'no builder runs here; start builders elsewhere with',
    `    ${command.map((word) => (word === '<name>' ? word : shellWord(word))).join(' ')}`,
  ];
  if (!publicKey) lines.push('  (no signer runs here and cache.public-keys is empty: add --trusted-public-key with the signer\'s public key)');
  if (/^https?:\/\/(127\.|localhost|\[::1\])/.test(substituter) || /^(127\.|localhost)/.test(stack.temporalAddress)) {
    lines.push('  (loopback addresses reach only this machine: from others, use an address they reach it at, e.g. api.host 0.0.0.0)');
  }
  return lines;
}

/** Registers `harmonia-ci dev`. */
export function registerDev(program: Command): void {
  withCacheOptions(program.command('dev'))
    .description('run everything on this machine: Temporal dev server and embedded PostgreSQL unless configured, then the API')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--roles <list>', `the roles to run here, comma-separated, from ${DEV_ROLES.join(', ')}; without builder, builders run elsewhere`, DEV_ROLES.join(','))
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
