/**
 * The binary cache as `run`, `dev`, `gc` and `cache serve` take it on the command line
 * (`--cache`, `--signing-key`), and what they print about it.
 */
import type { Command } from 'commander';
import { CacheError } from '../cache/errors.ts';
import { openCacheBackend } from '../cache/open.ts';
import type { CacheBackend } from '../cache/types.ts';
import type { ServerConfig } from '../config/types.ts';
import { SigningError } from '../daemon/core/errors.ts';
import { ensureLocalSigningKey, readSigningKey } from '../activities/signer/keys.ts';
import { CliError } from './errors.ts';

/** The cache flags. */
export interface CacheFlags {
  cache?: string;
  signingKey?: string;
}

/** Adds `--cache` and `--signing-key` to a command. */
export function withCacheOptions(command: Command): Command {
  return command
    .option('--cache <dir|s3-url>', 'binary cache: a directory or s3://bucket?endpoint=URL&region=NAME (default <state-dir>/cache)')
    .option('--signing-key <file>', 'secret key the signer signs narinfo with (default: one generated once as <state-dir>/signing-key)');
}

/** Puts the cache flags where loadServerConfig reads them; flags win over the environment and the file. */
export function applyCacheFlags(flags: CacheFlags, env: Record<string, string | undefined>): void {
  if (flags.cache !== undefined) env.HARMONIA_CI_CACHE_URL = flags.cache;
  if (flags.signingKey !== undefined) env.HARMONIA_CI_CACHE_SIGNING_KEY_FILE = flags.signingKey;
}

/** What `run` and `dev` print about the cache: where it is, the key, and the nix.conf lines when it is served. */
export function describeCache(cache: { description: string; publicKey: string; keyCreated: boolean }, url?: string, labelWidth = 11): string[] {
  const indent = ' '.repeat(labelWidth);
  return [
    `${'cache'.padEnd(labelWidth)}${cache.description}${url ? `, served at ${url}` : ''}`,
    `${indent}public key ${cache.publicKey}${cache.keyCreated ? ' (new)' : ''}`,
    ...(url ? [`${indent}nix.conf: extra-substituters = ${url}`, `${indent}          extra-trusted-public-keys = ${cache.publicKey}`] : []),
  ];
}

/** Opens the configured cache (cache.url with the s3 credentials) for serving or collecting. */
export function openConfiguredCache(config: ServerConfig): Promise<CacheBackend> {
  return openCacheBackend(config.cache.url, {
    profile: config.s3.profile,
    ...(config.s3.credentialsFile ? { credentialsFile: config.s3.credentialsFile } : {}),
  });
}

/** Opens the configured cache for serving, with the public key its signer signs with (generated once on one machine). */
export async function openServedCache(config: ServerConfig): Promise<{ backend: CacheBackend; publicKey: string; keyCreated: boolean }> {
  const key = config.cache.signingKeyFile ? await readSigningKey(config.cache.signingKeyFile.path) : await ensureLocalSigningKey(config.stateDir);
  return { backend: await openConfiguredCache(config), publicKey: key.publicKey, keyCreated: key.created };
}

/** Runs `action`, turning storage and key problems into plain messages instead of stack traces. */
export async function cacheErrorsAsCliErrors(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof CacheError || error instanceof SigningError) throw new CliError(error.message);
    throw error;
  }
}
