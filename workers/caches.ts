/**
 * From configuration to the caches outputs can come from: the upstream substituters builders
 * fetch from when our cache lacks a path, and the lookup planning asks before keeping a build.
 */
import type { Signer } from '../activities/signer/setup.ts';
import { builderCacheFor } from '../activities/signer/setup.ts';
import type { ServerConfig } from '../config/types.ts';
import { parsePublicKey } from '../daemon/core/signing.ts';
import { openBinaryCache } from '../daemon/executor/cache-client.ts';
import { PathLookup } from '../daemon/executor/lookup.ts';
import type { TrustedCache } from '../daemon/executor/substituter.ts';
import type { DaemonPool } from '../daemon/protocol/pool.ts';

/** `cache.upstream`, in order, each with its own keys. */
export function upstreamCachesFor(config: ServerConfig): TrustedCache[] {
  return config.cache.upstream.map((upstream) => ({
    cache: openBinaryCache(upstream.url),
    trustedKeys: upstream['public-keys'].map((text) => parsePublicKey(text)),
  }));
}

/**
 * What planning counts as available: the evaluator's local store, our cache (reached as a builder
 * reaches it: the signer's backend in this process, a local cache's directory, or the API's cache
 * routes), then the upstream caches. Our cache is trusted as it is: only our signer writes it.
 */
export function planningLookupFor(config: ServerConfig, deps: { daemon: DaemonPool; signer?: Signer | undefined; warn(message: string): void }): PathLookup {
  const { daemon } = deps;
  return new PathLookup({
    local: async (paths) => new Set(await daemon.use((client) => client.queryValidPaths(paths))),
    sources: [{ cache: builderCacheFor(config, deps.signer), rememberMisses: false }, ...upstreamCachesFor(config)],
    negativeTtlMs: config.cache.negativeTtl,
    positiveTtlMs: config.cache.positiveTtl,
    warn: deps.warn,
  });
}

/**
 * Which paths our cache holds, for the evaluator's `.drv` closure: our cache alone, hits remembered
 * for `cache.positive-ttl` (a closure shares most of its `.drv` files with the previous eval's),
 * misses never (they are published the moment after).
 */
export function ourCacheLookupFor(config: ServerConfig, deps: { signer?: Signer | undefined; warn(message: string): void }): PathLookup {
  return new PathLookup({
    sources: [{ cache: builderCacheFor(config, deps.signer), rememberMisses: false }],
    negativeTtlMs: config.cache.negativeTtl,
    positiveTtlMs: config.cache.positiveTtl,
    warn: deps.warn,
  });
}
