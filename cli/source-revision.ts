/**
 * The revision `harmonia-ci run` pushes for a local source: a digest of its files, so the same
 * source gives the same revision and a re-run after a crash finds (and resumes) the eval it
 * started, instead of superseding it. The state directory and `.git` are left out: what the
 * run itself writes must not change the revision.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';

/** SHA-1 (hex, like a git commit) of the source's names, kinds, executable bits, contents and link targets. */
export async function sourceRevision(path: string, options: { exclude?: string[] } = {}): Promise<string> {
  const target = resolve(path);
  const stats = await lstat(target);
  // A .nix file may import its neighbours: its directory is the source, and the file's name picks the jobset.
  const root = stats.isDirectory() ? target : dirname(target);
  const excluded = new Set((options.exclude ?? []).map((entry) => resolve(entry)));
  const hash = createHash('sha1');
  hash.update(`harmonia-ci source\0${stats.isDirectory() ? '' : basename(target)}\0`);
  await walk(hash, root, root, excluded);
  return hash.digest('hex');
}

async function walk(hash: Hash, root: string, dir: string, excluded: Set<string>): Promise<void> {
  // Sorted by code units, as git and Nix order entries, so the digest does not depend on the file system.
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.name === '.git' || excluded.has(full)) continue;
    const name = relative(root, full);
    if (entry.isSymbolicLink()) {
      hash.update(`link\0${name}\0${await readlink(full)}\0`);
    } else if (entry.isDirectory()) {
      hash.update(`dir\0${name}\0`);
      await walk(hash, root, full, excluded);
    } else if (entry.isFile()) {
      const { mode, size } = await lstat(full);
      hash.update(`file\0${name}\0${mode & 0o111 ? 'x' : '-'}\0${size}\0`);
      for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
    }
  }
}
