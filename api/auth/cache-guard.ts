/**
 * What the API's binary cache hides from those who may not see a private project: the build logs
 * of its derivations always, and, with `auth.hide-private-outputs`, the narinfos, listings and NARs
 * of paths that only private projects built. Paths are named by hashes nobody can guess and that
 * the hidden pages never show, so outputs stay downloadable by default: builders and planning read
 * this cache without credentials. A netrc with an API token as password (or a Bearer token)
 * reads what its owner may see.
 */
import type { FastifyInstance } from 'fastify';
import type { CacheGuard } from '../routes/cache.ts';

/** The guard for the API's cache routes. */
export function cacheGuard(app: FastifyInstance, options: { hideOutputs: boolean }): CacheGuard {
  const { hideOutputs } = options;
  return {
    storePath: async (request, hashPart) => !hideOutputs || app.access.storePathVisible(request, hashPart),
    log: async (request, hashPart) => app.access.storePathVisible(request, hashPart),
    async nar(request, narHash) {
      if (!hideOutputs) return true;
      const { rows } = await app.db.query<{ out_path: string }>('SELECT out_path FROM derivation_outputs WHERE nar_hash = $1 AND out_path IS NOT NULL', [`sha256:${narHash}`]);
      if (rows.length === 0) return true;
      for (const { out_path } of rows) {
        const hashPart = out_path.slice(out_path.lastIndexOf('/') + 1, out_path.lastIndexOf('/') + 33);
        if (await app.access.storePathVisible(request, hashPart)) return true;
      }
      return false;
    },
  };
}
