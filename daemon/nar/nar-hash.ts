/** NAR hashes: SHA-256 over the NAR serialisation, as `nix-store -q --hash` reports them. */
import { createHash } from 'node:crypto';
import type { Hash, HashAlgorithm } from '../core/hash.ts';
import { packNar } from './pack.ts';

/** A NAR digest together with the NAR's length in bytes. */
export interface NarDigest {
  hash: Hash;
  narSize: number;
}

/** Hashes a byte stream (OpenSSL's implementation: the pure one is several times slower on big NARs). */
export async function hashStream(source: AsyncIterable<Uint8Array>, algorithm: HashAlgorithm = 'sha256'): Promise<NarDigest> {
  const hasher = createHash(algorithm);
  let narSize = 0;
  for await (const chunk of source) {
    hasher.update(chunk);
    narSize += chunk.length;
  }
  return { hash: { algorithm, digest: new Uint8Array(hasher.digest()) }, narSize };
}

/** Passes `source` through unchanged while hashing it; digest() is valid once the stream has been consumed. */
export function tapHash(source: AsyncIterable<Uint8Array>, algorithm: HashAlgorithm = 'sha256'): { stream: AsyncIterable<Uint8Array>; digest(): NarDigest } {
  const hasher = createHash(algorithm);
  let narSize = 0;
  async function* stream(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hasher.update(chunk);
      narSize += chunk.length;
      yield chunk;
    }
  }
  return { stream: stream(), digest: () => ({ hash: { algorithm, digest: new Uint8Array(hasher.digest()) }, narSize }) };
}

/** Hashes the NAR serialisation of `path`; print it with formatHash(result.hash, 'base32'). */
export function narHash(path: string | Buffer, algorithm: HashAlgorithm = 'sha256'): Promise<NarDigest> {
  return hashStream(packNar(path, { recycleChunks: true }), algorithm);
}
