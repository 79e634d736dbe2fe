/**
 * Substitution from our binary cache, then from the upstream caches in order for what ours lacks:
 * narinfo fetched, signature verified against the keys trusted for the cache it came from, NAR
 * fetched and checked against the signed hash and size while it streams into the daemon. Missing
 * references are substituted first, so every import finds its references valid.
 */
import { createHash } from 'node:crypto';
import { formatHash, hashEquals, type Hash } from '../core/hash.ts';
import { narInfoFingerprint, type NarInfo } from '../core/narinfo.ts';
import { verifyFingerprint, type PublicKey } from '../core/signing.ts';
import type { DaemonPool } from '../protocol/pool.ts';
import { narStream, type BinaryCache } from './cache-client.ts';
import { SubstitutionError } from './errors.ts';

/** A binary cache and the keys a narinfo from it must be signed with. */
export interface TrustedCache {
  cache: BinaryCache;
  trustedKeys: readonly PublicKey[];
}

/** What substitution needs. */
export interface SubstituterDeps {
  pool: DaemonPool;
  /** Our cache, asked first. */
  cache: BinaryCache | undefined;
  trustedKeys: readonly PublicKey[];
  /** Upstream caches (cache.nixos.org, a mirror) asked in order for what ours lacks, each with its own keys. */
  upstream?: readonly TrustedCache[] | undefined;
}

/** A narinfo and the cache its NAR is read from. */
interface Found {
  info: NarInfo;
  cache: BinaryCache;
}

/** Throws unless some signature on `info` verifies with a trusted key. */
export function checkSignature(info: NarInfo, trustedKeys: readonly PublicKey[]): void {
  const fingerprint = narInfoFingerprint(info);
  if (info.sigs.some((sig) => verifyFingerprint(fingerprint, sig, trustedKeys))) return;
  const signers = info.sigs.map((sig) => sig.slice(0, sig.indexOf(':'))).join(', ') || 'nobody';
  const trusted = trustedKeys.map((key) => key.name).join(', ') || 'none configured';
  throw new SubstitutionError(info.storePath, `its narinfo has no valid signature by a trusted key (signed by: ${signers}; trusted: ${trusted})`);
}

/** Passes the NAR through, failing before its end if it is longer, shorter or hashes differently than signed. */
async function* verifiedNar(source: AsyncIterable<Uint8Array>, info: NarInfo): AsyncGenerator<Uint8Array> {
  const hasher = createHash(info.narHash.algorithm);
  let size = 0;
  let held: Uint8Array | undefined;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > info.narSize) throw new SubstitutionError(info.storePath, `its NAR is longer than the ${info.narSize} bytes the narinfo states`);
    hasher.update(chunk);
    // Hold back the last chunk until the whole NAR is checked, so a bad NAR never completes an import.
    if (held) yield held;
    held = chunk;
  }
  if (size !== info.narSize) throw new SubstitutionError(info.storePath, `its NAR is ${size} bytes, the narinfo states ${info.narSize}`);
  const actual: Hash = { algorithm: info.narHash.algorithm, digest: new Uint8Array(hasher.digest()) };
  if (!hashEquals(actual, info.narHash)) {
    throw new SubstitutionError(
      info.storePath,
      `its NAR hashes to ${formatHash(actual, 'base32')} but the signed narinfo states ${formatHash(info.narHash, 'base32')}: the cache holds a corrupt or tampered NAR`,
    );
  }
  if (held) yield held;
}

/** The narinfo of `path` from `source`, verified with that cache's keys; undefined when the cache lacks it. */
async function narInfoFrom(source: TrustedCache, path: string): Promise<NarInfo | undefined> {
  const info = await source.cache.narInfo(path);
  if (!info) return undefined;
  if (info.storePath !== path) throw new SubstitutionError(path, `the narinfo in ${source.cache.url} describes ${info.storePath} instead`);
  checkSignature(info, source.trustedKeys);
  return info;
}

/**
 * Our cache's narinfo when it has one (a bad one there is an error: ours has priority and is not
 * passed over), else the first upstream cache's whose narinfo verifies with that cache's keys.
 */
async function fetchNarInfo(deps: SubstituterDeps, path: string, expected: ReadonlyMap<string, Hash> | undefined): Promise<Found> {
  const upstream = deps.upstream ?? [];
  if (!deps.cache && upstream.length === 0) throw new SubstitutionError(path, 'it is not in the local store and no binary cache is configured');
  let found: Found | undefined;
  if (deps.cache) {
    const info = await narInfoFrom({ cache: deps.cache, trustedKeys: deps.trustedKeys }, path);
    if (info) found = { info, cache: deps.cache };
  }
  const refused: string[] = [];
  for (const source of found ? [] : upstream) {
    try {
      const info = await narInfoFrom(source, path);
      if (info) {
        found = { info, cache: source.cache };
        break;
      }
    } catch (error) {
      // An upstream cache that is down or holds a bad narinfo is passed over for the next, as Nix does.
      const message = error instanceof Error ? error.message : String(error);
      refused.push(`${source.cache.url}: ${message.replace(/^cannot substitute \S+: /, '')}`);
    }
  }
  if (!found) {
    const asked = [...(deps.cache ? [deps.cache.url] : []), ...upstream.map((source) => source.cache.url)].join(', ');
    const why = refused.length > 0 ? `; passed over: ${refused.join('; ')}` : '';
    throw new SubstitutionError(path, `no binary cache has it (asked ${asked})${why}`);
  }
  const canonical = expected?.get(path);
  if (canonical && !hashEquals(canonical, found.info.narHash)) {
    throw new SubstitutionError(
      path,
      `the NAR hash ${formatHash(found.info.narHash, 'base32')} in ${found.cache.url} differs from the canonical ${formatHash(canonical, 'base32')}`,
    );
  }
  return found;
}

/**
 * Makes `paths` valid, importing them and their missing references from the cache in dependency
 * order. Returns the paths imported. `expected` holds canonical NAR hashes the cache must match.
 */
export async function substitutePaths(deps: SubstituterDeps, paths: readonly string[], expected?: ReadonlyMap<string, Hash>): Promise<string[]> {
  const infos = new Map<string, Found>();
  let frontier = await deps.pool.use(async (client) => {
    const valid = new Set(await client.queryValidPaths(paths));
    return [...new Set(paths)].filter((path) => !valid.has(path));
  });
  while (frontier.length > 0) {
    const fetched = await Promise.all(frontier.map((path) => fetchNarInfo(deps, path, expected)));
    for (const found of fetched) infos.set(found.info.storePath, found);
    const references = [...new Set(fetched.flatMap((found) => found.info.references))].filter((ref) => !infos.has(ref));
    const validRefs = new Set(references.length > 0 ? await deps.pool.use((client) => client.queryValidPaths(references)) : []);
    frontier = references.filter((ref) => !validRefs.has(ref));
  }

  const order: Found[] = [];
  const visited = new Set<string>();
  const visit = (found: Found): void => {
    if (visited.has(found.info.storePath)) return;
    visited.add(found.info.storePath);
    for (const ref of found.info.references) {
      const dependency = infos.get(ref);
      if (dependency && ref !== found.info.storePath) visit(dependency);
    }
    order.push(found);
  };
  for (const found of infos.values()) visit(found);

  for (const { info, cache } of order) {
    const source = verifiedNar(narStream(cache, info), info);
    await deps.pool.use(
      (client) =>
        client.addToStoreNar({
          info: { path: info.storePath, deriver: info.deriver, narHash: info.narHash, references: info.references, narSize: info.narSize, signatures: info.sigs, ca: info.ca },
          source,
          // We checked the signature against the keys trusted for its cache; the daemon does not know them.
          dontCheckSigs: true,
        }),
      { retry: false },
    );
  }
  return order.map(({ info }) => info.storePath);
}
