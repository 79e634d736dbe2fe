/** Decorates the app with the binary cache storage, or `null` when none is configured. */
import { sharedPlugin } from './shared.ts';

/** What the API needs of a binary cache store (S3 bucket or local directory). */
export interface CacheStorage {
  /** Where the cache lives, for people: `s3://bucket at http://host`, `file:///var/cache`. */
  readonly description: string;
  /** Resolves when the storage answers; rejects with what is wrong. */
  check(): Promise<void>;
  close?(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    cacheStorage: CacheStorage | null;
  }
}

export interface CacheStoragePluginOptions {
  storage: CacheStorage | null;
  /** Close the storage when the app closes (true when the app created it). */
  owned: boolean;
}

/** Registers `app.cacheStorage`. */
export const cacheStoragePlugin = sharedPlugin<CacheStoragePluginOptions>('cache-storage', async (app, { storage, owned }) => {
  app.decorate('cacheStorage', storage);
  if (owned && storage?.close) {
    const close = storage.close.bind(storage);
    app.addHook('onClose', async () => close());
  }
});
