/**
 * `harmonia-ci cache serve`: the binary cache routes alone, over a local directory or an S3 bucket,
 * for a machine that serves the cache without the rest of the API.
 */
import type { Command } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import { startCacheServer, type CacheServer } from '../../api/cache-server.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { applyCacheFlags, cacheErrorsAsCliErrors, openConfiguredCache, type CacheFlags } from '../cache-options.ts';
import { withSetupErrorsAsCliErrors } from './dev.ts';

interface ServeOptions extends CacheFlags {
  config?: string;
  host?: string;
  port?: string;
}

async function serve(options: ServeOptions): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  applyCacheFlags(options, env);
  if (options.host !== undefined) env.HARMONIA_CI_API_HOST = options.host;
  if (options.port !== undefined) env.HARMONIA_CI_API_PORT = options.port;
  const config = await loadServerConfig({ env, file: options.config });
  const log = createLogger({ level: config.log.level, name: 'cache' });
  const backend = await openConfiguredCache(config);
  let server: CacheServer;
  try {
    await backend.check();
    server = await startCacheServer({ backend, host: config.api.host, port: config.api.port, log: log as FastifyBaseLogger });
  } catch (error) {
    await backend.close();
    throw error;
  }
  const host = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
  process.stdout.write(`serving ${backend.description} at http://${host}:${server.port}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await backend.close();
}

/** Registers `harmonia-ci cache serve`. */
export function registerCache(program: Command): void {
  const cache = program.command('cache').description('the binary cache (layout: nix-cache-info, <hash>.narinfo, nar/, log/)');
  cache
    .command('serve')
    .description('serve a binary cache to Nix clients: /nix-cache-info, /<hash>.narinfo, /nar/…, /log/<drv>')
    .option('--cache <dir|s3-url>', 'the cache: a directory or s3://bucket?endpoint=URL&region=NAME (default cache.url, else <state-dir>/cache)')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--host <address>', 'interface to listen on (default 127.0.0.1, or api.host)')
    .option('--port <port>', 'port to listen on; 0 picks a free one (default 8080, or api.port)')
    .action((options: ServeOptions) => withSetupErrorsAsCliErrors(() => cacheErrorsAsCliErrors(() => serve(options))));
}
