/**
 * Store paths: parsing, validation and computation, following libstore/path.cc and
 * Store::makeStorePath & friends in libstore/store-api.cc.
 */
import { BASE32_ALPHABET, encodeBase32 } from './base32.ts';
import { StorePathError } from './errors.ts';
import { compressHash, encodeBase16, formatHash, hashBytes, parseHash } from './hash.ts';
import type { Hash } from './hash.ts';

export const DEFAULT_STORE_DIR = '/nix/store';
/** Characters of the nix-base32 hash part of a store path. */
export const HASH_PART_LENGTH = 32;
/** Longest name Nix allows after the hash part (StorePath::MaxPathLen). */
export const MAX_NAME_LENGTH = 211;

/** A store path split into its 32-character hash part and its name; the store directory is kept apart. */
export interface StorePath {
  hashPart: string;
  name: string;
}

/** How a fixed-output path's contents were hashed: the file's bytes, or its NAR serialisation. */
export type FileIngestionMethod = 'flat' | 'recursive';

const NAME_PATTERN = /^[A-Za-z0-9+\-._?=]*$/;
const HASH_PART_PATTERN = new RegExp(`^[${BASE32_ALPHABET}]{${HASH_PART_LENGTH}}$`);

/**
 * Throws a StorePathError unless `name` is a valid store path name. A leading '.' is allowed:
 * Nix 2.8 accepts it (`nix-store --add .hidden` works), so such paths exist in real stores.
 */
export function validateStorePathName(name: string, context = name): void {
  if (name.length === 0) throw new StorePathError(`store path '${context}' has an empty name`);
  if (name.length > MAX_NAME_LENGTH) {
    throw new StorePathError(`store path '${context}' has a name longer than ${MAX_NAME_LENGTH} characters: shorten the name`);
  }
  if (!NAME_PATTERN.test(name)) {
    const bad = [...name].find((c) => !NAME_PATTERN.test(c));
    throw new StorePathError(`store path '${context}' contains illegal character '${bad}': names use only A-Z a-z 0-9 + - . _ ? =`);
  }
}

/** Parses a store path base name (`<hash>-<name>`), as found in narinfo References. */
export function parseStorePathBaseName(baseName: string): StorePath {
  if (baseName.length < HASH_PART_LENGTH + 2 || baseName[HASH_PART_LENGTH] !== '-') {
    throw new StorePathError(`'${baseName}' is not a store path base name: expected a ${HASH_PART_LENGTH}-character hash, '-' and a name`);
  }
  const hashPart = baseName.slice(0, HASH_PART_LENGTH);
  if (!HASH_PART_PATTERN.test(hashPart)) {
    throw new StorePathError(`store path '${baseName}' has a hash part that is not Nix base32 (alphabet ${BASE32_ALPHABET})`);
  }
  const name = baseName.slice(HASH_PART_LENGTH + 1);
  validateStorePathName(name, baseName);
  return { hashPart, name };
}

/** Parses an absolute store path such as `/nix/store/<hash>-<name>`. */
export function parseStorePath(path: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const prefix = `${storeDir}/`;
  if (!path.startsWith(prefix)) throw new StorePathError(`path '${path}' is not in the Nix store ${storeDir}`);
  const baseName = path.slice(prefix.length);
  if (baseName.includes('/')) {
    throw new StorePathError(`path '${path}' is inside a store path, not a store path itself: drop everything after '${prefix}${baseName.split('/')[0]}'`);
  }
  return parseStorePathBaseName(baseName);
}

/** True when `path` parses as a store path in `storeDir`. */
export function isStorePath(path: string, storeDir = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch (error) {
    if (error instanceof StorePathError) return false;
    throw error;
  }
}

/** The `<hash>-<name>` base name. */
export function storePathBaseName(p: StorePath): string {
  return `${p.hashPart}-${p.name}`;
}

/** The absolute path of `p` in `storeDir`. */
export function formatStorePath(p: StorePath, storeDir = DEFAULT_STORE_DIR): string {
  return `${storeDir}/${p.hashPart}-${p.name}`;
}

/** Nix orders store path sets by base name; this sorts full paths or StorePaths that way. */
export function sortStorePaths<T extends StorePath | string>(paths: readonly T[]): T[] {
  const key = (p: T): string => (typeof p === 'string' ? (p.split('/').pop() ?? p) : storePathBaseName(p));
  return [...paths].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * Computes a store path from its type (`text:…`, `source:…`, `output:out`), the sha256 of
 * its contents or derivation and its name: sha256("<type>:sha256:<hex>:<storeDir>:<name>")
 * folded to 20 bytes. `inner` is a sha256 Hash or its base16 digest.
 */
export function makeStorePath(type: string, inner: Hash | string, name: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const innerHash = typeof inner === 'string' ? parseHash(inner, 'sha256') : inner;
  if (innerHash.algorithm !== 'sha256') {
    throw new StorePathError(`store path of '${name}' needs a sha256 inner hash, got ${innerHash.algorithm}: hash the contents with sha256`);
  }
  validateStorePathName(name);
  const fingerprint = `${type}:${formatHash(innerHash, 'base16')}:${storeDir}:${name}`;
  return { hashPart: encodeBase32(compressHash(hashBytes('sha256', fingerprint).digest, 20)), name };
}

/** The type string with references appended as full paths, sorted as Nix's StorePathSet is. */
function makeType(type: string, references: readonly StorePath[], hasSelfReference: boolean, storeDir: string): string {
  let out = type;
  for (const ref of sortStorePaths(references)) out += `:${formatStorePath(ref, storeDir)}`;
  return hasSelfReference ? `${out}:self` : out;
}

/** Path of a text file (`builtins.toFile`, `.drv` files): `contentHash` is sha256 of the contents. */
export function makeTextPath(
  name: string,
  contentHash: Hash,
  references: readonly StorePath[] = [],
  storeDir = DEFAULT_STORE_DIR,
): StorePath {
  if (contentHash.algorithm !== 'sha256') throw new StorePathError(`text path '${name}' needs a sha256 content hash, got ${contentHash.algorithm}`);
  return makeStorePath(makeType('text', references, false, storeDir), contentHash, name, storeDir);
}

/** Options of makeFixedOutputPath; references are only possible for recursive sha256 ("source") paths. */
export interface FixedOutputOptions {
  method: FileIngestionMethod;
  hash: Hash;
  name: string;
  references?: readonly StorePath[];
  hasSelfReference?: boolean;
  storeDir?: string;
}

/**
 * Path of fixed-output content: recursive sha256 is a "source" path (as `nix-store --add`
 * and `builtins.path` produce); anything else hashes "fixed:out:[r:]<algo>:<hex>:".
 */
export function makeFixedOutputPath(options: FixedOutputOptions): StorePath {
  const { method, hash, name, references = [], hasSelfReference = false, storeDir = DEFAULT_STORE_DIR } = options;
  if (hash.algorithm === 'sha256' && method === 'recursive') {
    return makeStorePath(makeType('source', references, hasSelfReference, storeDir), hash, name, storeDir);
  }
  if (references.length > 0 || hasSelfReference) {
    throw new StorePathError(`fixed-output path '${name}' cannot have references unless it is recursive sha256`);
  }
  const prefix = method === 'recursive' ? 'r:' : '';
  const inner = hashBytes('sha256', `fixed:out:${prefix}${hash.algorithm}:${encodeBase16(hash.digest)}:`);
  return makeStorePath('output:out', inner, name, storeDir);
}

/** Name of a derivation output's path: the derivation name, plus `-<output>` unless it is `out`. */
export function outputPathName(drvName: string, outputName: string): string {
  return outputName === 'out' ? drvName : `${drvName}-${outputName}`;
}

/** Path of an input-addressed output, from the derivation's (masked) modulo hash. */
export function makeOutputPath(outputName: string, drvModuloHash: Hash, drvName: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  return makeStorePath(`output:${outputName}`, drvModuloHash, outputPathName(drvName, outputName), storeDir);
}
