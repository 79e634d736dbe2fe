/**
 * Reading an upload back before it is signed: one pass over the stored (zstd) bytes, never held
 * whole, that hashes them, decompresses them, validates the NAR and measures what the narinfo will
 * claim about it — its hash and size, the references that occur in it, the hash a fixed-output
 * derivation promised — and its `.ls` listing.
 */
import { createHash, type Hash as NodeHash } from 'node:crypto';
import { formatHash, type Hash, type HashAlgorithm } from '../../daemon/core/hash.ts';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { parseNar } from '../../daemon/nar/parse.ts';
import { formatNarListing, NarListingBuilder } from '../../daemon/nar/listing.ts';
import { ReferenceScanner } from '../../daemon/nar/references.ts';
import type { NarAddress } from './content-address.ts';

/** What the stored bytes of one upload turned out to be. */
export interface Inspection extends NarAddress {
  /** `sha256:<base32>` and size of the compressed bytes as stored: the narinfo's FileHash and FileSize. */
  fileSha256: string;
  fileSize: number;
  /** The candidates whose hash part occurs in the NAR, sorted. */
  references: string[];
  /** The hash a fixed-output derivation declares, computed over what it declares it over. */
  fixedHash?: Hash;
  /** The `.ls` listing of the NAR, as Nix writes it with `write-nar-listing`. */
  listing: Buffer;
}

export interface InspectOptions {
  /** Store paths to look for in the NAR. */
  candidates: Iterable<string>;
  /** Stop (and refuse) once the NAR grows past this many bytes: the size the uploader announced. */
  maxNarSize: number;
  /** A fixed-output derivation's hash: over the NAR (`recursive`) or over the one file's bytes. */
  fixed?: { algorithm: HashAlgorithm; recursive: boolean };
}

/** An upload whose bytes are not what a narinfo may say: the reason is for people. */
export class InspectionError extends Error {}

const digestOf = (algorithm: HashAlgorithm, hasher: NodeHash): Hash => ({ algorithm, digest: new Uint8Array(hasher.digest()) });

/** Reads `compressed` (zstd of a NAR) once, as it streams. */
export async function inspectUpload(compressed: AsyncIterable<Uint8Array>, options: InspectOptions): Promise<Inspection> {
  const fileHasher = createHash('sha256');
  let fileSize = 0;
  async function* stored(): AsyncGenerator<Uint8Array> {
    for await (const chunk of compressed) {
      fileHasher.update(chunk);
      fileSize += chunk.length;
      yield chunk;
    }
  }
  const narHasher = createHash('sha256');
  const fixedNarHasher = options.fixed?.recursive ? createHash(options.fixed.algorithm) : undefined;
  const scanner = new ReferenceScanner(options.candidates);
  let narSize = 0;
  async function* nar(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of zstdDecompress(stored())) {
        narSize += chunk.length;
        if (narSize > options.maxNarSize) throw new InspectionError(`it unpacks to more than the ${options.maxNarSize} NAR bytes announced`);
        narHasher.update(chunk);
        fixedNarHasher?.update(chunk);
        scanner.update(chunk);
        yield chunk;
      }
    } catch (error) {
      if (error instanceof InspectionError) throw error;
      throw new InspectionError(`it is not valid zstd: ${(error as Error).message}`);
    }
  }

  const contentHasher = createHash('sha256');
  const fixedFileHasher = options.fixed && !options.fixed.recursive ? createHash(options.fixed.algorithm) : undefined;
  let single = true;
  const listing = new NarListingBuilder();
  try {
    for await (const event of parseNar(nar())) {
      listing.add(event);
      if (event.type === 'regular' && event.path.length === 0 && !event.executable) continue;
      if (event.type === 'contents') {
        contentHasher.update(event.chunk);
        fixedFileHasher?.update(event.chunk);
      } else single = false;
    }
  } catch (error) {
    if (error instanceof InspectionError) throw error;
    throw new InspectionError(`it is not a valid NAR: ${(error as Error).message}`);
  }

  const fixed = options.fixed;
  let fixedHash: Hash | undefined;
  if (fixed && fixedNarHasher) fixedHash = digestOf(fixed.algorithm, fixedNarHasher);
  else if (fixed && fixedFileHasher && single) fixedHash = digestOf(fixed.algorithm, fixedFileHasher);
  return {
    fileSha256: formatHash(digestOf('sha256', fileHasher), 'base32'),
    fileSize,
    narHash: digestOf('sha256', narHasher),
    narSize,
    ...(single ? { fileHash: digestOf('sha256', contentHasher) } : {}),
    references: scanner.references(),
    ...(fixedHash ? { fixedHash } : {}),
    listing: formatNarListing(listing.tree()),
  };
}
