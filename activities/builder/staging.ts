/**
 * Where a builder keeps what it will upload: compressed NARs and build logs. Small ones (most
 * outputs and logs of a CI run) stay in memory, within a budget; larger ones, or any beyond the
 * budget, go to files under the staging directory. Either way they live only as long as this
 * process: a restarted builder finds nothing staged (prepareStaging empties the directory) and
 * the build workflow builds again, exactly as when the files are gone.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatHash } from '../../daemon/core/hash.ts';
import { removeFile } from '../../lib/files.ts';
import { peek } from '../../lib/peek.ts';
import type { StagedFile } from '../types.ts';

/** Items up to this size may stay in memory. */
export const SMALL_ITEM_BYTES = 256 * 1024;
/** Memory all items of one staging area may take together. */
export const MEMORY_BUDGET_BYTES = 64 * 1024 * 1024;

export class Staging {
  private readonly items = new Map<string, Buffer>();
  private used = 0;
  /** Directories that received a file, removed whole when their upload is done. */
  private readonly spilled = new Set<string>();

  constructor(private readonly limits: { itemBytes?: number; budgetBytes?: number } = {}) {}

  /** Whether `size` more bytes may be held in memory now. */
  private fits(size: number): boolean {
    return size <= (this.limits.itemBytes ?? SMALL_ITEM_BYTES) && this.used + size <= (this.limits.budgetBytes ?? MEMORY_BUDGET_BYTES);
  }

  /** Holds `data` as the item at `path` if it fits in memory; returns whether it was kept. */
  keep(path: string, data: Buffer): boolean {
    if (!this.fits(data.length)) return false;
    this.forget(path);
    this.items.set(path, data);
    this.used += data.length;
    return true;
  }

  /** The item at `path` when it is held in memory. */
  get(path: string): Buffer | undefined {
    return this.items.get(path);
  }

  /** Whether an item is staged at `path`, in memory or as a file. */
  async has(path: string): Promise<boolean> {
    return this.items.has(path) || (await stat(path).then(() => true, () => false));
  }

  /** Notes that a file is about to be written in `dir`, creating it. */
  async spill(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    this.spilled.add(dir);
  }

  /** Stages `source` at `path`, in memory while it stays small, and returns its size and SHA-256. */
  async write(path: string, source: AsyncIterable<Uint8Array>): Promise<StagedFile> {
    const hasher = createHash('sha256');
    let size = 0;
    async function* measured(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        hasher.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    }
    const limit = Math.min(this.limits.itemBytes ?? SMALL_ITEM_BYTES, (this.limits.budgetBytes ?? MEMORY_BUDGET_BYTES) - this.used);
    const peeked = await peek(measured(), limit);
    // Another item may have taken the room meanwhile: then this one goes to its file after all.
    if (!peeked.ended || !this.keep(path, Buffer.concat(peeked.head))) {
      await this.spill(dirname(path));
      await pipeline(Readable.from(peeked.all()), createWriteStream(path));
    }
    return { size, sha256: formatHash({ algorithm: 'sha256', digest: new Uint8Array(hasher.digest()) }, 'base32') };
  }

  private forget(path: string): void {
    const held = this.items.get(path);
    if (!held) return;
    this.used -= held.length;
    this.items.delete(path);
  }

  /** Removes the item at `path`, wherever it is. */
  async remove(path: string): Promise<void> {
    this.forget(path);
    await removeFile(path);
  }

  /** Removes every item under `dir`. */
  async removeDir(dir: string): Promise<void> {
    const prefix = `${dir}/`;
    for (const path of [...this.items.keys()]) if (path.startsWith(prefix)) this.forget(path);
    if (this.spilled.delete(dir)) await rm(dir, { recursive: true, force: true });
  }
}
