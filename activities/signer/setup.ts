/**
 * From configuration to a running signer and to the cache a builder substitutes from: shared by
 * the in-process workers of `dev` and `run` and by `harmonia-ci worker signer` / `worker builder`.
 */
import type { ServerConfig } from '../../config/types.ts';
import { parsePublicKey, type PublicKey } from '../../daemon/core/signing.ts';
import { openBinaryCache, type BinaryCache } from '../../daemon/executor/cache-client.ts';
import { pathToFileURL } from 'node:url';
import { backendBinaryCache } from '../../cache/backend-reader.ts';
import { CacheError } from '../../cache/errors.ts';
import { openCacheBackend } from '../../cache/open.ts';
import type { CacheBackend } from '../../cache/types.ts';
import type { SignerActivities } from '../types.ts';
import { createSignerActivities, initialiseCache } from './index.ts';
import { SignerDerivations } from './derivations.ts';
import type { DaemonPool } from '../../daemon/protocol/pool.ts';
import { ensureLocalSigningKey, readSigningKey, type SigningKey } from './keys.ts';

export interface Signer {
  activities: SignerActivities;
  backend: CacheBackend;
  key: SigningKey;
  close(): Promise<void>;
}

/** Opens the configured cache, loads the signing key (generating one on a single machine) and sets the cache up. */
export async function openSigner(
  config: ServerConfig,
  options: { generateKey: boolean; warn?(message: string): void; store?: DaemonPool },
): Promise<Signer> {
  const keyFile = config.cache.signingKeyFile;
  let key: SigningKey;
  if (keyFile) key = await readSigningKey(keyFile.path);
  else if (options.generateKey) key = await ensureLocalSigningKey(config.stateDir);
  else {
    throw new CacheError(
      'the signer needs a signing key: set cache.signing-key-file (HARMONIA_CI_CACHE_SIGNING_KEY_FILE) to a file made by `harmonia-ci keys generate`',
    );
  }
  const backend = await openCacheBackend(
    config.cache.url,
    { profile: config.s3.profile, ...(config.s3.credentialsFile ? { credentialsFile: config.s3.credentialsFile } : {}) },
    { multipart: { threshold: config.cache.multipartThreshold, partSize: config.cache.multipartPartSize } },
  );
  try {
    await backend.check();
    await initialiseCache(backend);
  } catch (error) {
    await backend.close();
    throw error;
  }
  const activities = createSignerActivities({
    backend,
    secretKey: key.secretKey,
    uploadLifetimeMs: config.limits.presignedUrlLifetime,
    derivations: new SignerDerivations({ backend, store: options.store, upstream: config.cache.upstream.map((upstream) => openBinaryCache(upstream.url)) }),
    ...(options.warn ? { warn: options.warn } : {}),
  });
  return { activities, backend, key, close: () => backend.close() };
}

/** Public keys a builder trusts when substituting: the configured ones and, on one machine, the local signer's. */
export function trustedKeysFor(config: ServerConfig, signer?: SigningKey): PublicKey[] {
  const texts = [...config.cache.publicKeys, ...(signer ? [signer.publicKey] : [])];
  return [...new Set(texts)].map((text) => parsePublicKey(text));
}

/**
 * Where a builder reads our cache: the signer's own backend when they share a process, the first of
 * builder.substituters, the directory of a local cache, or else the API's cache routes (builders hold
 * no storage credentials).
 */
export function builderCacheFor(config: ServerConfig, signer?: Signer): BinaryCache {
  if (signer) return backendBinaryCache(signer.backend);
  // A host apart from the signer names where it reads the cache (`--substituter`): its own
  // cache.url is not ours, and the default local directory would be empty.
  const [ours] = config.builder.substituters;
  if (ours) return openBinaryCache(ours);
  if (config.cache.url.kind === 'local') return openBinaryCache(pathToFileURL(config.cache.url.path).href);
  return openBinaryCache(config.api.publicUrl);
}
