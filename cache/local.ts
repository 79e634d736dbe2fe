/**
 * A binary cache in a local directory (the embedded default), laid out like the S3 bucket so that
 * `nix copy --from file://<dir>` reads it too. Writes are atomic (a temporary file renamed or
 * linked into place). Uploads land in `.incoming/` under a name derived from their announced hash
 * and become visible only when the signer has re-hashed them: a builder sharing the machine writes
 * staging files, never the served layout.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, opendir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { formatHash, parsePrefixedHash } from '../daemon/core/hash.ts';
import { removeFile } from '../lib/files.ts';
import { classifyKey } from './layout.ts';
import { CacheStorageError, InvalidKeyError, UploadMismatchError } from './errors.ts';
import type { ByteRange, CacheBackend, ObjectStream, StoredObject, UploadSpec, UploadTarget } from './types.ts';

const INCOMING = '.incoming';
const READ_CHUNK = 1 << 20;

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** SHA-256 of a file as `sha256:<base32>`. */
async function hashFile(path: string): Promise<string> {
  const hasher = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) hasher.update(chunk as Buffer);
  return formatHash({ algorithm: 'sha256', digest: new Uint8Array(hasher.digest()) }, 'base32');
}

export class LocalDirectoryBackend implements CacheBackend {
  readonly description: string;

  /** Directories this process made or found; nothing in the cache removes them. */
  private readonly madeDirs = new Set<string>();

  constructor(readonly root: string) {
    this.description = root;
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  private path(key: string): string {
    if (!classifyKey(key)) throw new InvalidKeyError(key);
    return join(this.root, key);
  }

  /** The staging file of an announced upload: named by key, hash and size, so only equal uploads of one key coincide. */
  private stagingPath(spec: UploadSpec): string {
    const hash = formatHash(parsePrefixedHash(spec.sha256), 'base32', false);
    return join(this.root, INCOMING, `${spec.key.replace('/', '_')}-${hash}-${spec.size}`);
  }

  async check(): Promise<void> {
    try {
      await mkdir(join(this.root, INCOMING), { recursive: true });
      const probe = join(this.root, INCOMING, `probe-${randomBytes(6).toString('hex')}`);
      await writeFile(probe, '');
      await unlink(probe);
    } catch (error) {
      throw new CacheStorageError(`cannot write to the cache directory ${this.root} (${(error as Error).message}): create it or fix its permissions`, { cause: error });
    }
  }

  async close(): Promise<void> {}

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const info = await stat(this.path(key));
      return { key, size: info.size, lastModified: info.mtime };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async get(key: string, range?: ByteRange): Promise<ObjectStream | undefined> {
    let handle;
    try {
      handle = await open(this.path(key), 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const info = await handle.stat();
    const start = Math.min(range?.start ?? 0, info.size);
    const end = Math.min(range?.end ?? info.size - 1, info.size - 1);
    let body: Readable;
    if (end < start) {
      await handle.close();
      body = Readable.from([]);
    } else {
      // The stream owns the descriptor from here and closes it when done or destroyed.
      body = handle.createReadStream({ start, end, highWaterMark: READ_CHUNK });
    }
    const object = { key, size: info.size, lastModified: info.mtime };
    return { object, start, end, body, ...(classifyKey(key) === 'log' ? { contentEncoding: 'zstd' } : {}) };
  }

  async put(key: string, body: Uint8Array, options: { contentType: string; ifAbsent?: boolean }): Promise<boolean> {
    const target = this.path(key);
    await this.ensureDir(dirname(target));
    await this.ensureDir(join(this.root, INCOMING));
    const temporary = join(this.root, INCOMING, `put-${randomBytes(8).toString('hex')}`);
    await writeFile(temporary, body);
    try {
      if (!options.ifAbsent) {
        await rename(temporary, target);
        return true;
      }
      // link() fails if the name exists: the atomic first-writer-wins a rename cannot give.
      await link(temporary, target);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await removeFile(temporary);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      await unlink(this.path(key)).catch((error: unknown) => {
        if (!isMissing(error)) throw error;
      });
    }
  }

  async *list(prefix = ''): AsyncIterable<StoredObject> {
    for (const dir of ['', 'nar/', 'log/']) {
      if (!dir.startsWith(prefix) && !prefix.startsWith(dir)) continue;
      let entries;
      try {
        entries = await opendir(join(this.root, dir));
      } catch (error) {
        if (isMissing(error)) continue;
        throw error;
      }
      for await (const entry of entries) {
        const key = dir + entry.name;
        if (!entry.isFile() || !key.startsWith(prefix) || !classifyKey(key)) continue;
        const info = await stat(join(this.root, key)).catch(() => undefined);
        if (info) yield { key, size: info.size, lastModified: info.mtime };
      }
    }
  }

  async uploadTarget(spec: UploadSpec, options: { lifetimeMs: number }): Promise<UploadTarget> {
    this.path(spec.key);
    await this.ensureDir(join(this.root, INCOMING));
    return { kind: 'file', path: this.stagingPath(spec), expiresAt: Date.now() + options.lifetimeMs };
  }

  async commitUpload(spec: UploadSpec): Promise<StoredObject | undefined> {
    const target = this.path(spec.key);
    const existing = await this.verifiedHead(spec.key);
    if (existing) return existing;
    const staged = this.stagingPath(spec);
    const info = await stat(staged).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (!info) return undefined;
    const sha256 = await hashFile(staged);
    if (info.size !== spec.size || sha256 !== spec.sha256) {
      await removeFile(staged);
      throw new UploadMismatchError(
        `the upload for ${spec.key} is ${info.size} bytes hashing to ${sha256}, but ${spec.size} bytes hashing to ${spec.sha256} were announced; it was discarded`,
      );
    }
    await this.ensureDir(dirname(target));
    try {
      await link(staged, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      return this.verifiedHead(spec.key);
    } finally {
      await removeFile(staged);
    }
    return { key: spec.key, size: info.size, lastModified: info.mtime, sha256 };
  }

  /** The object at `key` with its hash computed, or undefined. */
  private async verifiedHead(key: string): Promise<StoredObject | undefined> {
    const object = await this.head(key);
    return object && { ...object, sha256: await hashFile(this.path(key)) };
  }

  /** Removes staging files older than `before` (uploads that were never committed). */
  async removeStaleUploads(before: Date): Promise<number> {
    let removed = 0;
    const names = await readdir(join(this.root, INCOMING)).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(this.root, INCOMING, name);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtime < before) {
        await removeFile(path);
        removed++;
      }
    }
    return removed;
  }
}
