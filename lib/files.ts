/** Small file-system helpers shared by the cache and the builder's staging. */
import { unlink } from 'node:fs/promises';

/** Removes a file; one that is already gone is fine. */
export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
