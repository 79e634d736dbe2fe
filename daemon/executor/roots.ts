/**
 * GC roots held while a build works. Each build gets a directory of symlinks to the store paths it
 * needs, each registered with the daemon as an indirect root, so a concurrent garbage collection
 * cannot take an input away mid-build or an output before it is reported. Unlike temporary roots
 * they survive the loss of a daemon connection, and unlike them they can be dropped one by one.
 * Directories are named `<pid>-<token>`: one whose process is gone is left over from a crash.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, rmdir, symlink, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DaemonPool } from '../protocol/pool.ts';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes root directories under `rootsDir` whose owning process no longer runs; returns their names. */
export async function removeStaleRoots(rootsDir: string): Promise<string[]> {
  await mkdir(rootsDir, { recursive: true });
  const removed: string[] = [];
  for (const entry of await readdir(rootsDir)) {
    const pid = Number(entry.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
    await rm(join(rootsDir, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/** The roots of one build. */
export class BuildRoots {
  private readonly rooted = new Set<string>();

  private constructor(
    private readonly pool: DaemonPool,
    readonly dir: string,
  ) {}

  /** Creates an empty root directory for one build under `rootsDir`. */
  static async create(pool: DaemonPool, rootsDir: string, label: string): Promise<BuildRoots> {
    const dir = join(rootsDir, `${process.pid}-${randomBytes(4).toString('hex')}-${label.replace(/[^A-Za-z0-9._+-]/g, '_').slice(0, 60)}`);
    await mkdir(dir, { recursive: true });
    return new BuildRoots(pool, dir);
  }

  private linkFor(storePath: string): string {
    return join(this.dir, basename(storePath));
  }

  /** Roots `storePaths` (which need not exist yet). */
  async add(storePaths: Iterable<string>): Promise<void> {
    for (const path of storePaths) {
      if (this.rooted.has(path)) continue;
      const link = this.linkFor(path);
      await symlink(path, link);
      await this.pool.use((client) => client.addIndirectRoot(link));
      this.rooted.add(path);
    }
  }

  /** Drops the root of one path (so it can be deleted). */
  async remove(storePath: string): Promise<void> {
    if (!this.rooted.delete(storePath)) return;
    await unlink(this.linkFor(storePath));
  }

  /** Drops every root of this build; the daemon forgets the dangling registrations at its next GC. */
  async release(): Promise<void> {
    const links = [...this.rooted].map((path) => this.linkFor(path));
    this.rooted.clear();
    // Its own links, then the directory: cheaper than a recursive removal, which stays the fallback.
    await Promise.all(links.map((link) => unlink(link).catch(() => undefined)));
    await rmdir(this.dir).catch(() => rm(this.dir, { recursive: true, force: true }));
  }
}
