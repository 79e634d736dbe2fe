/**
 * Finding store path references in bytes, as Nix does after a build: a reference is a candidate
 * path whose 32-character hash part occurs anywhere in the output's NAR serialisation. The scan
 * runs over a stream in chunks, keeping the last 31 bytes of each so that a hash split across two
 * chunks is found.
 */
import { parseStorePath } from '../core/store-path.ts';

const HASH_LENGTH = 32;

/** Nix's base32 alphabet (no e, o, u, t): a byte outside it cannot be inside a hash part. */
const IN_ALPHABET = new Uint8Array(256);
for (const char of '0123456789abcdfghijklmnpqrsvwxyz') IN_ALPHABET[char.charCodeAt(0)] = 1;

/** Scans a byte stream for the hash parts of candidate store paths. */
export class ReferenceScanner {
  private readonly byHash = new Map<string, string>();
  private readonly found = new Set<string>();
  private tail: Buffer = Buffer.alloc(0);

  constructor(candidates: Iterable<string>) {
    for (const path of candidates) this.byHash.set(parseStorePath(path).hashPart, path);
  }

  update(chunk: Uint8Array): void {
    if (this.byHash.size === 0 || this.found.size === this.byHash.size) return;
    const bytes = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    // Check the last byte of a window first: a byte outside the alphabet skips every window that holds it.
    let i = 0;
    while (i + HASH_LENGTH <= bytes.length) {
      let j = HASH_LENGTH - 1;
      while (j >= 0 && IN_ALPHABET[bytes[i + j]!]) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      const path = this.byHash.get(bytes.toString('latin1', i, i + HASH_LENGTH));
      if (path !== undefined) this.found.add(path);
      i++;
    }
    this.tail = Buffer.from(bytes.subarray(Math.max(0, bytes.length - (HASH_LENGTH - 1))));
  }

  /** The candidates found so far, sorted. */
  references(): string[] {
    return [...this.found].sort();
  }
}
