/**
 * Substitution from our binary cache: narinfo fetched, signature verified against trusted keys,
 * NAR fetched and checked against the signed hash and size while it streams into the daemon.
 * Missing references are substituted first, so every import finds its references valid.
 */
import { createHash } from 'node:crypto';
import { formatHash, hashEquals, type Hash } from '../core/hash.ts';
import { narInfoFingerprint, type NarInfo } from '../core/narinfo.ts';
import { verifyFingerprint, type PublicKey } from '../core/signing.ts';
import type { DaemonPool } from '../protocol/pool.ts';
import { narStream, type BinaryCache } from './cache-client.ts';
import { SubstitutionError } from './errors.ts';

/** What substitution needs. */
export interface SubstituterDeps {
  pool: DaemonPool;
  cache: BinaryCache | undefined;
  trustedKeys: readonly PublicKey[];
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

async function fetchNarInfo(deps: SubstituterDeps, path: string, expected: ReadonlyMap<string, Hash> | undefined): Promise<NarInfo> {
  if (!deps.cache) throw new SubstitutionError(path, 'it is not in the local store and no binary cache is configured');
  const info = await deps.cache.narInfo(path);
  if (!info) throw new SubstitutionError(path, `the binary cache ${deps.cache.url} does not have it`);
  if (info.storePath !== path) throw new SubstitutionError(path, `the narinfo in ${deps.cache.url} describes ${info.storePath} instead`);
  checkSignature(info, deps.trustedKeys);
  const canonical = expected?.get(path);
  if (canonical && !hashEquals(canonical, info.narHash)) {
    throw new SubstitutionError(
      path,
      `the cache's NAR hash ${formatHash(info.narHash, 'base32')} differs from the canonical ${formatHash(canonical, 'base32')}`,
    );
  }
  return info;
}

/**
 * Makes `paths` valid, importing them and their missing references from the cache in dependency
 * order. Returns the paths imported. `expected` holds canonical NAR hashes the cache must match.
 */
export async function substitutePaths(deps: SubstituterDeps, paths: readonly string[], expected?: ReadonlyMap<string, Hash>): Promise<string[]> {
  const infos = new Map<string, NarInfo>();
  let frontier = await deps.pool.use(async (client) => {
    const valid = new Set(await client.queryValidPaths(paths));
    return [...new Set(paths)].filter((path) => !valid.has(path));
  });
  while (frontier.length > 0) {
    const fetched = await Promise.all(frontier.map((path) => fetchNarInfo(deps, path, expected)));
    for (const info of fetched) infos.set(info.storePath, info);
    const references = [...new Set(fetched.flatMap((info) => info.references))].filter((ref) => !infos.has(ref));
    const validRefs = new Set(references.length > 0 ? await deps.pool.use((client) => client.queryValidPaths(references)) : []);
    frontier = references.filter((ref) => !validRefs.has(ref));
  }

  const order: NarInfo[] = [];
  const visited = new Set<string>();
  const visit = (info: NarInfo): void => {
    if (visited.has(info.storePath)) return;
    visited.add(info.storePath);
    for (const ref of info.references) {
      const dependency = infos.get(ref);
      if (dependency && ref !== info.storePath) visit(dependency);
    }
    order.push(info);
  };
  for (const info of infos.values()) visit(info);

  for (const info of order) {
    const source = verifiedNar(narStream(deps.cache!, info), info);
    await deps.pool.use(
      (client) =>
        client.addToStoreNar({
          info: { path: info.storePath, deriver: info.deriver, narHash: info.narHash, references: info.references, narSize: info.narSize, signatures: info.sigs, ca: info.ca },
          source,
          // We checked the signature against our own trusted keys; the daemon does not know them.
          dontCheckSigs: true,
        }),
      { retry: false },
    );
  }
  return order.map((info) => info.storePath);
}
