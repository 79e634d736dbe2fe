/**
 * Read access to a Nix binary cache (`<hash>.narinfo` + `nar/…`) over HTTP(S) or from a local
 * directory (`file://`), as written by `nix copy --to` or our signer.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { parseNarInfo, type NarInfo } from '../core/narinfo.ts';
import { CacheRequestError, CorruptNarInfoError, ExecutorError, UnsupportedCompressionError } from './errors.ts';
import { zstdDecompress } from './zstd.ts';
import { DEFAULT_HTTP_TIMEOUTS, fetchStream, fetchText, type HttpTimeouts } from '../../lib/http.ts';

/** A binary cache we can read narinfos and NARs from. */
export interface BinaryCache {
  /** Where it is, for messages. */
  readonly url: string;
  /** The narinfo of the store path with this hash part, or undefined when the cache lacks it. */
  narInfo(storePath: string): Promise<NarInfo | undefined>;
  /** The NAR file at `url` (relative to the cache) as stored: possibly compressed. */
  narFile(info: NarInfo): AsyncIterable<Uint8Array>;
}

function hashPartOf(storePath: string): string {
  return storePath.slice(storePath.lastIndexOf('/') + 1).slice(0, 32);
}

function parseOrExplain(text: string, storePath: string, source: string): NarInfo {
  try {
    return parseNarInfo(text);
  } catch (error) {
    throw new CorruptNarInfoError(storePath, `the narinfo at ${source} is corrupt: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A cache in a local directory. */
class DirectoryCache implements BinaryCache {
  constructor(
    readonly url: string,
    private readonly dir: string,
  ) {}

  async narInfo(storePath: string): Promise<NarInfo | undefined> {
    const file = join(this.dir, `${hashPartOf(storePath)}.narinfo`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return parseOrExplain(text, storePath, file);
  }

  narFile(info: NarInfo): AsyncIterable<Uint8Array> {
    return createReadStream(join(this.dir, info.url), { highWaterMark: 1 << 20 });
  }
}

/** A cache served over HTTP(S): a narinfo within one deadline, a NAR with an inactivity limit (it may be gigabytes). */
class HttpCache implements BinaryCache {
  constructor(
    readonly url: string,
    private readonly timeouts: HttpTimeouts,
  ) {}

  private resolve(relative: string): string {
    return `${this.url.replace(/\/+$/, '')}/${relative}`;
  }

  async narInfo(storePath: string): Promise<NarInfo | undefined> {
    const location = this.resolve(`${hashPartOf(storePath)}.narinfo`);
    const { response, text } = await fetchText(location, {}, this.timeouts.requestMs);
    if (response.status === 404 || response.status === 403) return undefined;
    if (!response.ok) throw new CacheRequestError(storePath, `GET ${location} answered ${response.status} ${response.statusText}`);
    return parseOrExplain(text, storePath, location);
  }

  async *narFile(info: NarInfo): AsyncIterable<Uint8Array> {
    const location = this.resolve(info.url);
    const { response, body } = await fetchStream(location, this.timeouts);
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new CacheRequestError(info.storePath, `GET ${location} answered ${response.status} ${response.statusText}`);
    }
    yield* body;
  }
}

/** Opens a binary cache by URL: `file:///dir`, `http://…` or `https://…` (with `timeouts`, lib/http.ts has the defaults). */
export function openBinaryCache(url: string, timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS): BinaryCache {
  if (url.startsWith('file://')) return new DirectoryCache(url, fileURLToPath(url.split('?')[0]!));
  if (url.startsWith('http://') || url.startsWith('https://')) return new HttpCache(url, timeouts);
  throw new ExecutorError(`unsupported binary cache URL '${url}': use file:///path, http:// or https://`);
}

type Decompressor = () => NodeJS.ReadWriteStream;

const ZLIB_DECOMPRESSORS: Record<string, Decompressor | undefined> = {
  gzip: () => zlib.createGunzip(),
  br: () => zlib.createBrotliDecompress(),
};

/** The uncompressed NAR of `info`, decompressing what the cache stored. */
export function narStream(cache: BinaryCache, info: NarInfo): AsyncIterable<Uint8Array> {
  const compression = info.compression === '' ? 'bzip2' : info.compression;
  if (compression === 'none') return cache.narFile(info);
  // Node 20 has no zstd in node:zlib: the zstd command decodes it, streaming.
  if (compression === 'zstd') return zstdDecompress(cache.narFile(info));
  const decompressor = ZLIB_DECOMPRESSORS[compression];
  if (!decompressor) throw new UnsupportedCompressionError(info.storePath, compression);
  const output = decompressor();
  // pipeline destroys `output` with the error if the download or the decoder fails, so a reader sees it.
  pipeline(Readable.from(cache.narFile(info)), output, () => undefined);
  return output as unknown as AsyncIterable<Uint8Array>;
}
