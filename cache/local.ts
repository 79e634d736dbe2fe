/**
 * A binary cache in a local directory (the embedded default), laid out like the S3 bucket so that
 * `nix copy --from file://<dir>` reads it too. Writes are atomic (a temporary file renamed or
 * linked into place). Uploads land in `.incoming/` under a name derived from their announced hash
 * and become visible only when the signer has read them back: a builder sharing the machine writes
 * staging files, never the served layout.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, opendir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { removeFile } from '../lib/files.ts';
import { classifyKey, isReplaceable, stagingKey } from './layout.ts';
import { CacheStorageError, InvalidKeyError } from './errors.ts';
import type { ByteRange, CacheBackend, ObjectStream, StoredObject, UploadSpec, UploadTarget } from './types.ts';

const INCOMING = '.incoming';
const READ_CHUNK = 1 << 20;

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
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

  /** The staging file of an announced upload: named by hash and size, so only equal uploads coincide. */
  private stagingPath(spec: UploadSpec): string {
    this.path(spec.key);
    return join(this.root, INCOMING, stagingKey(spec).slice('incoming/'.length));
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

  async stagedUpload(spec: UploadSpec): Promise<StoredObject | undefined> {
    const info = await stat(this.stagingPath(spec)).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    return info && { key: stagingKey(spec), size: info.size, lastModified: info.mtime };
  }

  async readStaged(spec: UploadSpec): Promise<Readable | undefined> {
    try {
      const handle = await open(this.stagingPath(spec), 'r');
      return handle.createReadStream({ highWaterMark: READ_CHUNK });
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async promoteUpload(spec: UploadSpec): Promise<boolean> {
    const target = this.path(spec.key);
    const staged = this.stagingPath(spec);
    await this.ensureDir(dirname(target));
    try {
      if (isReplaceable(spec.key)) {
        // rename() replaces atomically: a reader sees the old log or the new one, never a mix.
        await rename(staged, target);
        return true;
      }
      // link() fails if the name exists: an object already there is kept.
      await link(staged, target);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      if (isMissing(error)) throw new CacheStorageError(`the staged upload for ${spec.key} vanished from ${this.root} before it was moved into place`);
      throw error;
    } finally {
      await removeFile(staged);
    }
  }

  async discardUpload(spec: UploadSpec): Promise<void> {
    await removeFile(this.stagingPath(spec));
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
