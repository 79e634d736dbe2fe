/** A cache backend read as the executor's BinaryCache, so builders on the signer's machine substitute straight from it. */
import { parseNarInfo, type NarInfo } from '../daemon/core/narinfo.ts';
import type { BinaryCache } from '../daemon/executor/cache-client.ts';
import { CorruptNarInfoError, SubstitutionError } from '../daemon/executor/errors.ts';
import { narInfoKey } from './layout.ts';
import type { CacheBackend } from './types.ts';

/** Reads the whole (small) object at `key` as text, or undefined when absent. */
export async function readText(backend: CacheBackend, key: string): Promise<string | undefined> {
  return (await backend.read(key))?.toString('utf8');
}

/** The backend as a source of narinfos and NARs for substitution. */
export function backendBinaryCache(backend: CacheBackend): BinaryCache {
  return {
    url: backend.description,
    async narInfo(storePath: string): Promise<NarInfo | undefined> {
      const text = await readText(backend, narInfoKey(storePath));
      if (text === undefined) return undefined;
      try {
        return parseNarInfo(text);
      } catch (error) {
        throw new CorruptNarInfoError(storePath, `the narinfo in ${backend.description} is corrupt: ${(error as Error).message}`);
      }
    },
    async *narFile(info: NarInfo): AsyncIterable<Uint8Array> {
      const stream = await backend.get(info.url);
      if (!stream) throw new SubstitutionError(info.storePath, `${backend.description} has its narinfo but not ${info.url}`);
      yield* stream.body as AsyncIterable<Uint8Array>;
    },
  };
}
