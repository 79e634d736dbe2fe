/**
 * The binary cache layout, shared by both storage backends, the signer, the builder's upload and
 * the HTTP server (compatible with niks3 and harmonia): `nix-cache-info`, `<hash>.narinfo`,
 * `<hash>.ls`, `nar/<narhash>.nar.zst`, `log/<drv name>` (zstd); uploads wait under `incoming/` until the
 * signer has verified them, and are never served from there.
 */
import type { NarHash } from '../daemon/core/hash.ts';
import { DEFAULT_STORE_DIR, parseStorePath } from '../daemon/core/store-path.ts';

export const CACHE_INFO_KEY = 'nix-cache-info';

/** Content types as Nix's own binary cache stores set them. */
export const CONTENT_TYPES = {
  cacheInfo: 'text/x-nix-cache-info',
  narInfo: 'text/x-nix-narinfo',
  nar: 'application/x-nix-nar',
  log: 'text/plain; charset=utf-8',
  listing: 'application/json',
} as const;

/** Where Nix looks for this cache relative to others (lower wins; cache.nixos.org is 40). */
export const DEFAULT_PRIORITY = 30;

/** The `nix-cache-info` file. */
export function cacheInfoText(storeDir = DEFAULT_STORE_DIR, priority = DEFAULT_PRIORITY): string {
  return `StoreDir: ${storeDir}\nWantMassQuery: 1\nPriority: ${priority}\n`;
}

/** `<hash part>.narinfo` of a store path. */
export function narInfoKey(storePath: string, storeDir = DEFAULT_STORE_DIR): string {
  return `${parseStorePath(storePath, storeDir).hashPart}.narinfo`;
}

/** `nar/<nar hash in base32>.nar.zst`: the NAR's own hash names it, so equal NARs share one object. */
export function narKey(narHash: NarHash): string {
  return `nar/${narHash.slice(narHash.indexOf(':') + 1)}.nar.zst`;
}

/** `<hash part>.ls`: the NAR listing of a store path, which `nix store ls` and `nix store cat` read instead of the NAR. */
export function listingKey(storePath: string, storeDir = DEFAULT_STORE_DIR): string {
  return `${parseStorePath(storePath, storeDir).hashPart}.ls`;
}

/** `log/<drv base name>`, where `nix log` looks for a build log. */
export function logKey(drvPath: string): string {
  return `log/${drvPath.slice(drvPath.lastIndexOf('/') + 1)}`;
}

/**
 * `incoming/<final key, / as _>-<sha256 of the bytes, base32>-<size>`: where an announced upload
 * is staged. Only the signer moves it to its final name, after reading it back. Equal uploads for
 * one key share one name; uploads for different keys never do.
 */
export function stagingKey(spec: { key: string; sha256: string; size: number }): string {
  return `incoming/${spec.key.replace('/', '_')}-${spec.sha256.slice(spec.sha256.indexOf(':') + 1)}-${spec.size}`;
}

const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;
const NAR_FILE = /^nar\/[0-9a-df-np-sv-z]{52}\.nar\.zst$/;
const INCOMING_FILE = /^incoming\/(nar_[0-9a-df-np-sv-z]{52}\.nar\.zst|log_[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+\.drv)-[0-9a-df-np-sv-z]{52}-\d{1,15}$/;
const LOG_FILE = /^log\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+\.drv$/;

/**
 * Whether a new object may replace the one at `key`: only build logs, so the log of the newest
 * attempt of a derivation (a failed build's, then its rebuild's) is the one served. NARs,
 * narinfos and listings keep their first writer.
 */
export function isReplaceable(key: string): boolean {
  return LOG_FILE.test(key);
}

/** What kind of object a key names, or undefined for a key outside the layout. */
export function classifyKey(key: string): 'cache-info' | 'narinfo' | 'listing' | 'nar' | 'log' | 'incoming' | undefined {
  if (key === CACHE_INFO_KEY) return 'cache-info';
  if (key.endsWith('.narinfo') && HASH_PART.test(key.slice(0, -'.narinfo'.length))) return 'narinfo';
  if (key.endsWith('.ls') && HASH_PART.test(key.slice(0, -'.ls'.length))) return 'listing';
  if (NAR_FILE.test(key)) return 'nar';
  if (LOG_FILE.test(key)) return 'log';
  if (INCOMING_FILE.test(key)) return 'incoming';
  return undefined;
}
