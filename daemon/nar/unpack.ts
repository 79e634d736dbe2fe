/**
 * Streaming NAR unpacker, the counterpart of `nix-store --restore`. Everything is created
 * exclusively (mkdir, O_CREAT|O_EXCL|O_NOFOLLOW, symlink all fail on an existing path) below
 * a destination that must not exist yet, and the parser rejects names that could climb out
 * ('..', '/', NUL) or repeat, so nothing is ever written through a symlink or outside `dest`.
 * On failure the partly written destination is removed.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, mkdir, open, rm, symlink } from 'node:fs/promises';
import { NarFileError } from './errors.ts';
import type { NarDigest } from './nar-hash.ts';
import { tapHash } from './nar-hash.ts';
import type { NarPath } from './parse.ts';
import { parseNar } from './parse.ts';

const SLASH = Buffer.from('/');
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function fsPath(root: Buffer, path: NarPath): Buffer {
  if (path.length === 0) return root;
  const parts: Buffer[] = [root];
  for (const name of path) parts.push(SLASH, name);
  return Buffer.concat(parts);
}

async function assertAbsent(dest: string): Promise<void> {
  try {
    await lstat(dest);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  throw new NarFileError(`cannot unpack into '${dest}': it already exists; choose a path that does not exist yet`, dest);
}

async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.length) done += (await file.write(chunk, done, chunk.length - done)).bytesWritten;
}

/** Recreates the tree stored in a NAR at `dest` (which must not exist); returns the NAR's size and SHA-256. */
export async function unpackNar(source: AsyncIterable<Uint8Array>, dest: string): Promise<NarDigest> {
  await assertAbsent(dest);
  const root = Buffer.from(dest);
  const tap = tapHash(source);
  let created = false;
  let file: FileHandle | undefined;
  let remaining = 0;
  try {
    for await (const event of parseNar(tap.stream)) {
      switch (event.type) {
        case 'directory':
          await mkdir(fsPath(root, event.path), 0o777);
          created = true;
          break;
        case 'regular': {
          const handle = await open(fsPath(root, event.path), CREATE_FLAGS, 0o666);
          file = handle;
          created = true;
          // Like nix-store --restore: add the execute bits to whatever the umask left.
          if (event.executable) await handle.chmod((await handle.stat()).mode | 0o111);
          remaining = event.size;
          break;
        }
        case 'contents':
          await writeAll(file!, event.chunk);
          remaining -= event.chunk.length;
          break;
        case 'symlink':
          await symlink(event.target, fsPath(root, event.path));
          created = true;
          break;
      }
      if (file !== undefined && remaining === 0) {
        const handle = file;
        file = undefined;
        await handle.close();
      }
    }
  } catch (error) {
    await file?.close().catch(() => undefined);
    if (created) await rm(root, { recursive: true, force: true });
    throw error;
  }
  return tap.digest();
}
