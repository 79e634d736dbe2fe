/**
 * `harmonia-ci api`: the API role of a fleet. Everything it needs is configured
 * (PostgreSQL, Temporal); it starts nothing else and stops on SIGINT/SIGTERM.
 */
import { Option, type Command } from 'commander';
import { startApiServer } from '../../api/server.ts';
import { loadServerConfig } from '../../config/server.ts';
import { DatabaseUnreachableError } from '../../db/errors.ts';
import { openDatabase, type Database } from '../../db/open.ts';
import { createLogger } from '../../lib/log.ts';
import { openConfiguredCache } from '../cache-options.ts';
import { CliError } from '../errors.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';

interface ApiOptions {
  config?: string;
  host?: string;
  port?: string;
  temporalUiUrl?: string;
}

async function runApi(options: ApiOptions): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  if (options.host !== undefined) env.HARMONIA_CI_API_HOST = options.host;
  if (options.port !== undefined) env.HARMONIA_CI_API_PORT = options.port;
  const config = await loadServerConfig({ env, file: options.config });
  const log = createLogger({ level: config.log.level, name: 'api' });

  if (!config.database.url) throw new CliError('`harmonia-ci api` needs PostgreSQL: set DATABASE_URL or database.url (`harmonia-ci dev` runs an embedded one)');
  // Refuses a schema newer (or older) than this program before serving anything from it; a
  // database that does not answer yet is no reason to refuse webhooks for longer than it is away.
  let database: Database | undefined;
  try {
    database = await openDatabase({ url: config.database.url, stateDir: config.stateDir, migrate: false });
  } catch (error) {
    if (!(error instanceof DatabaseUnreachableError)) throw error;
    log.warn(`${error.message}; starting anyway: /healthz reports the database down (and checks its schema once it answers), webhooks get 503 until then`);
  }
  // The binary cache routes: read access only (give the API read-only storage credentials).
  const cache = await openConfiguredCache(config);
  try {
    const server = await startApiServer({
      config,
      log,
      deps: { ...(database && { pool: database.pool }), cacheStorage: cache },
      temporalUiUrl: options.temporalUiUrl,
      host: config.api.host,
      port: config.api.port,
    });
    log.info(`API listening on ${server.url} (dashboard ${server.url}/ci/)`);
    await untilSignal();
    log.info('closing the API');
    await server.close();
  } finally {
    await cache.close();
    await database?.close();
  }
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Registers `harmonia-ci api`. */
export function registerApi(program: Command): void {
  program
    .command('api')
    .description('serve the HTTP API, dashboard and health endpoint against configured PostgreSQL and Temporal')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--host <address>', 'interface to listen on (default 127.0.0.1, or api.host)')
    .option('--port <port>', 'port to listen on (default 8080, or api.port)')
    .addOption(new Option('--temporal-ui-url <url>', 'Temporal Web UI linked from the dashboard').env('HARMONIA_CI_TEMPORAL_UI_URL'))
    .action((options: ApiOptions) => withSetupErrorsAsCliErrors(() => runApi(options)));
}
