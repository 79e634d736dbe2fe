/**
 * A Nix store served as a binary cache, read through the nix-daemon (as harmonia does): narinfos are
 * made on demand from the daemon's path info and signed with our key, NARs are the daemon's
 * nar-from-path stream (optionally zstd-compressed on the way out), `.ls` listings are computed
 * from that stream, and build logs are read from the store's log directory.
 *
 * This is deliberately not a CacheBackend: a backend is a writable object store keyed by file name,
 * with upload targets, gc and first-writer-wins puts, none of which a live store has. A store
 * answers questions by store path, and its objects have no stored compressed form or file hash.
 * The routes (api/routes/store-cache.ts) speak the same HTTP layout as the backend ones.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { formatHash, hashEquals, parseHash } from '../daemon/core/hash.ts';
import { narInfoFingerprint, printNarInfo, type NarInfo } from '../daemon/core/narinfo.ts';
import type { SecretKey } from '../daemon/core/signing.ts';
import { DEFAULT_STORE_DIR, parseStorePathBaseName } from '../daemon/core/store-path.ts';
import { zstdCompress } from '../daemon/executor/zstd.ts';
import { formatNarListing, listNar } from '../daemon/nar/listing.ts';
import { narFromPath as narExport } from '../daemon/protocol/nar-transfer.ts';
import type { PathInfo } from '../daemon/protocol/path-info.ts';
import type { DaemonPool } from '../daemon/protocol/pool.ts';
import { cacheInfoText, DEFAULT_PRIORITY } from './layout.ts';
import { queryPathFromHashPart } from './store-query.ts';

/** Compression of the NARs served: none (the NAR itself, with a known length) or zstd on the fly. */
export type StoreNarCompression = 'none' | 'zstd';

export interface StoreCacheSourceOptions {
  pool: DaemonPool;
  secretKey: SecretKey;
  compression?: StoreNarCompression;
  /** The store's log directory (`<state>/log/nix`); default /nix/var/log/nix. */
  logDir?: string;
  storeDir?: string;
  priority?: number;
}

/** A NAR being served. */
export interface StoreNar {
  compression: StoreNarCompression;
  /** Byte length when known in advance (uncompressed NARs). */
  size?: number;
  body: Readable;
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410), so node:crypto can load a Nix secret key.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Signs with node:crypto's native Ed25519: every narinfo is signed as it is asked for, and the pure
 * JavaScript signer of daemon/core/signing.ts costs milliseconds per signature. Ed25519 signatures
 * are deterministic, so both give the same bytes.
 */
function nativeSigner(secretKey: SecretKey): (fingerprint: string) => string {
  const key: KeyObject = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.key.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  return (fingerprint) => `${secretKey.name}:${sign(null, Buffer.from(fingerprint), key).toString('base64')}`;
}

const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;
// `<hash part>-<NAR hash, base32>.nar[.zst]`: the NAR hash makes the URL immutable; a path deleted
// and re-added with other contents gets another URL, and the old one answers 404.
const NAR_FILE = /^([0-9a-df-np-sv-z]{32})-([0-9a-df-np-sv-z]{52})\.nar(\.zst)?$/;

/** Answers binary cache requests from a store behind a nix-daemon. */
export class StoreCacheSource {
  readonly description: string;
  private readonly pool: DaemonPool;
  private readonly sign: (fingerprint: string) => string;
  private readonly compression: StoreNarCompression;
  private readonly logDir: string;
  private readonly storeDir: string;
  private readonly info: string;

  constructor(options: StoreCacheSourceOptions) {
    this.pool = options.pool;
    this.sign = nativeSigner(options.secretKey);
    this.compression = options.compression ?? 'none';
    this.logDir = options.logDir ?? '/nix/var/log/nix';
    this.storeDir = options.storeDir ?? DEFAULT_STORE_DIR;
    this.info = cacheInfoText(this.storeDir, options.priority ?? DEFAULT_PRIORITY);
    this.description = `the store behind ${this.pool.socketPath}, signed by ${options.secretKey.name}`;
  }

  /**
   * Resolves when the daemon answers, with `connections` connections opened one after the other:
   * the daemon forks per connection behind a short listen backlog, so a burst of connects under
   * the first load would be refused (EAGAIN).
   */
  async check(connections = 1): Promise<void> {
    const clients = [];
    try {
      for (let i = 0; i < connections; i++) {
        const client = await this.pool.acquire();
        clients.push(client);
        await client.isValidPath(`${this.storeDir}/${'0'.repeat(32)}-check`);
      }
    } finally {
      for (const client of clients) this.pool.release(client);
    }
  }

  cacheInfo(): string {
    return this.info;
  }

  /** Path info of the store path with this hash part; undefined for a malformed or unknown one. */
  private async pathInfo(hashPart: string): Promise<PathInfo | undefined> {
    if (!HASH_PART.test(hashPart)) return undefined;
    return this.pool.use(async (client) => {
      const path = await queryPathFromHashPart(client, hashPart);
      return path === undefined ? undefined : client.queryPathInfo(path);
    });
  }

  /** The signed narinfo of the path with hash part `hashPart`, or undefined. */
  async narInfo(hashPart: string): Promise<string | undefined> {
    const info = await this.pathInfo(hashPart);
    if (!info) return undefined;
    const narHash32 = formatHash(info.narHash, 'base32', false);
    const zstd = this.compression === 'zstd';
    const narInfo: NarInfo = {
      storePath: info.path,
      url: `nar/${hashPart}-${narHash32}.nar${zstd ? '.zst' : ''}`,
      compression: zstd ? 'zstd' : 'none',
      narHash: info.narHash,
      narSize: info.narSize,
      references: info.references,
      sigs: [],
      ...(zstd ? {} : { fileHash: info.narHash, fileSize: info.narSize }),
      ...(info.deriver ? { deriver: info.deriver } : {}),
      ...(info.ca ? { ca: info.ca } : {}),
    };
    const ours = this.sign(narInfoFingerprint(narInfo));
    narInfo.sigs = [...new Set([...info.signatures, ours])].sort();
    return printNarInfo(narInfo, this.storeDir);
  }

  /** Path info of the NAR named `file` (as a narinfo of this source names it), if it is one this source serves. */
  private async narInfoOf(file: string): Promise<{ info: PathInfo; compression: StoreNarCompression } | undefined> {
    const match = NAR_FILE.exec(file);
    if (!match) return undefined;
    const [, hashPart, narHash32, zst] = match;
    const compression: StoreNarCompression = zst ? 'zstd' : 'none';
    if (compression !== this.compression) return undefined;
    const info = await this.pathInfo(hashPart!);
    if (!info || !hashEquals(info.narHash, parseHash(`sha256:${narHash32}`))) return undefined;
    return { info, compression };
  }

  /** Whether the NAR named `file` is served, and its length when known, without exporting it (HEAD). */
  async narHead(file: string): Promise<{ size?: number } | undefined> {
    const found = await this.narInfoOf(file);
    if (!found) return undefined;
    return found.compression === 'none' ? { size: found.info.narSize } : {};
  }

  /** The NAR named `file` (as a narinfo of this source names it), or undefined. */
  async nar(file: string): Promise<StoreNar | undefined> {
    const found = await this.narInfoOf(file);
    if (!found) return undefined;
    const { info, compression } = found;
    const nar = this.narStream(info);
    if (compression === 'none') return { compression, size: info.narSize, body: nar };
    return { compression, body: Readable.from(zstdCompress(nar)) };
  }

  /** The `.ls` listing (Nix's JSON) of the path with hash part `hashPart`, or undefined. */
  async listing(hashPart: string): Promise<Buffer | undefined> {
    const info = await this.pathInfo(hashPart);
    if (!info) return undefined;
    return formatNarListing(await listNar(this.narStream(info)));
  }

  /**
   * The build log of the derivation `drvName` (`<hash>-<name>.drv`), plain text, or undefined.
   * Nix keeps it at `<logDir>/drvs/<2 chars>/<rest>`, bzip2-compressed unless compress-build-log
   * is off.
   */
  async log(drvName: string): Promise<Readable | undefined> {
    if (!drvName.endsWith('.drv')) return undefined;
    try {
      parseStorePathBaseName(drvName);
    } catch {
      return undefined;
    }
    const file = join(this.logDir, 'drvs', drvName.slice(0, 2), drvName.slice(2));
    if (await exists(`${file}.bz2`)) {
      const child = spawn('bzip2', ['-dc', `${file}.bz2`], { stdio: ['ignore', 'pipe', 'ignore'] });
      return child.stdout;
    }
    if (await exists(file)) return createReadStream(file);
    return undefined;
  }

  /**
   * The NAR of `info.path` from the daemon. The connection is held while the bytes flow, paced by
   * the reader; a reader that goes away ends the export, and its connection is retired.
   */
  private narStream(info: PathInfo): PassThrough {
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const sink = async (chunk: Uint8Array): Promise<void> => {
      if (out.destroyed) throw new Error(`the reader of the NAR of ${info.path} went away`);
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
    };
    this.pool
      .use((client) => client.connection.exclusive((io) => narExport(io, info, sink)), { retry: false })
      .then(() => out.end(), (error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))));
    return out;
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
