/**
 * `harmonia-ci cache serve`: the binary cache routes alone, over a local directory, an S3 bucket
 * or (with --store) a host's Nix store through its daemon, for a machine that serves the cache
 * without the rest of the API.
 */
import type { Command } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import { startCacheServer, type CacheServer } from '../../api/cache-server.ts';
import { readSigningKey } from '../../activities/signer/keys.ts';
import { StoreCacheSource, type StoreNarCompression } from '../../cache/store-source.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { applyCacheFlags, cacheErrorsAsCliErrors, openConfiguredCache, type CacheFlags } from '../cache-options.ts';
import { CliError } from '../errors.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';

interface ServeOptions extends CacheFlags {
  config?: string;
  host?: string;
  port?: string;
  store?: boolean;
  socket?: string;
  compression?: string;
  logDir?: string;
}

function waitForStop(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** `cache serve --store`: the store behind a nix-daemon, its narinfos signed with --signing-key as they are asked for. */
async function serveStore(options: ServeOptions, host: string, port: number, log: FastifyBaseLogger): Promise<void> {
  if (options.cache !== undefined) throw new CliError('--store serves a Nix store, --cache a binary cache: give one of them');
  if (options.signingKey === undefined) throw new CliError('--store needs --signing-key <file> (make one with `nix-store --generate-binary-cache-key`)');
  const compression = options.compression ?? 'none';
  if (compression !== 'none' && compression !== 'zstd') throw new CliError(`--compression ${compression} is not supported: use none or zstd`);
  const key = await readSigningKey(options.signingKey).catch((error: unknown) => {
    throw new CliError(`cannot read the signing key ${options.signingKey}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const connections = 16;
  const pool = new DaemonPool({ socketPath: options.socket, maxConnections: connections });
  const source = new StoreCacheSource({ pool, secretKey: key.secretKey, compression: compression as StoreNarCompression, logDir: options.logDir });
  let server: CacheServer;
  try {
    await source.check(connections);
    server = await startCacheServer({ store: source, host, port, log });
  } catch (error) {
    await pool.close();
    throw error;
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`serving ${source.description} at http://${shown}:${server.port}\npublic key ${key.publicKey}\n`);
  await waitForStop();
  await server.close();
  await pool.close();
}

async function serve(options: ServeOptions): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  applyCacheFlags(options, env);
  if (options.host !== undefined) env.HARMONIA_CI_API_HOST = options.host;
  if (options.port !== undefined) env.HARMONIA_CI_API_PORT = options.port;
  const config = await loadServerConfig({ env, file: options.config });
  const log = createLogger({ level: config.log.level, name: 'cache' });
  if (options.store) return serveStore(options, config.api.host, config.api.port, log as FastifyBaseLogger);
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
  await waitForStop();
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
    .option('--store', "serve this host's Nix store (through its nix-daemon) instead of a binary cache; needs --signing-key")
    .option('--socket <path>', 'with --store: the nix-daemon socket (default $NIX_DAEMON_SOCKET_PATH, else the system one)')
    .option('--signing-key <file>', 'with --store: the secret key narinfos are signed with as they are served')
    .option('--compression <none|zstd>', 'with --store: compression of the NARs served (default none)')
    .option('--log-dir <dir>', "with --store: the store's build log directory (default /nix/var/log/nix)")
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--host <address>', 'interface to listen on (default 127.0.0.1, or api.host)')
    .option('--port <port>', 'port to listen on; 0 picks a free one (default 8080, or api.port)')
    .action((options: ServeOptions) => withSetupErrorsAsCliErrors(() => cacheErrorsAsCliErrors(() => serve(options))));
}
