/** The NAR format layer: pack, parse/validate, unpack, hash and list Nix archives. */
export { NarError, NarFileError } from './errors.ts';
export { hashStream, narHash, tapHash } from './nar-hash.ts';
export type { NarDigest } from './nar-hash.ts';
export { formatNarListing, listNar } from './listing.ts';
export type { NarListingEntry, NarListingNode } from './listing.ts';
export { NAR_CHUNK_SIZE, packNar, writeNar } from './pack.ts';
export { parseNar, validateNar } from './parse.ts';
export type { NarEvent, NarPath } from './parse.ts';
export { unpackNar } from './unpack.ts';
