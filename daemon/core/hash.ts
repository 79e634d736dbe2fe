/**
 * Hashes as Nix parses and prints them (libutil/hash.cc): base16, Nix base32, base64
 * and SRI, each with or without an `algo:` prefix.
 */
import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { base32Length, decodeBase32, encodeBase32 } from './base32.ts';
import { Base32Error, HashError } from './errors.ts';

export type HashAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';
export type HashEncoding = 'base16' | 'base32' | 'base64' | 'sri';

/** A digest together with the algorithm that produced it. */
export interface Hash {
  algorithm: HashAlgorithm;
  digest: Uint8Array;
}

/** An incremental hash computation. */
export interface Hasher {
  update(data: Uint8Array | string): Hasher;
  digest(): Hash;
}

export const HASH_SIZES: Readonly<Record<HashAlgorithm, number>> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

const IMPLEMENTATIONS = { md5, sha1, sha256, sha512 } as const;
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_VALUES: ReadonlyMap<string, number> = new Map([...BASE64_ALPHABET].map((c, i) => [c, i]));
const utf8 = new TextEncoder();

/** True for the algorithm names Nix knows. */
export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return Object.hasOwn(HASH_SIZES, name);
}

/** Parses an algorithm name, throwing a HashError listing the known ones. */
export function parseHashAlgorithm(name: string): HashAlgorithm {
  if (!isHashAlgorithm(name)) throw new HashError(`unknown hash algorithm '${name}': use one of md5, sha1, sha256, sha512`);
  return name;
}

/** Digests `data` (strings are hashed as UTF-8). */
export function hashBytes(algorithm: HashAlgorithm, data: Uint8Array | string): Hash {
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  return { algorithm, digest: IMPLEMENTATIONS[algorithm](bytes) };
}

/** Starts an incremental hash; feed it with update() and finish with digest(). */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  const state = IMPLEMENTATIONS[algorithm].create();
  const hasher: Hasher = {
    update(data) {
      state.update(typeof data === 'string' ? utf8.encode(data) : data);
      return hasher;
    },
    digest: () => ({ algorithm, digest: state.digest() }),
  };
  return hasher;
}

/** Folds a digest into `size` bytes by XOR, as Nix's compressHash does for store path hashes. */
export function compressHash(digest: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < digest.length; i++) out[i % size]! ^= digest[i]!;
  return out;
}

/** Lowercase hexadecimal. */
export function encodeBase16(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(bytes.length - i, 3) + 1;
    for (let k = 0; k < 4; k++) out += k < chars ? BASE64_ALPHABET[(chunk >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

/** Base64 decoding with Nix's leniency: stops at '=', skips newlines, rejects other foreign characters. */
export function decodeBase64(text: string): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of text) {
    if (c === '=') break;
    if (c === '\n') continue;
    const value = BASE64_VALUES.get(c);
    if (value === undefined) throw new HashError(`invalid character '${c}' in base64 string '${text}'`);
    acc = ((acc << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

function base64Length(size: number): number {
  return Math.ceil(size / 3) * 4;
}

function decodeBase16(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]*$/.test(text)) throw new HashError(`invalid base-16 hash '${text}'`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function decodeDigest(rest: string, algorithm: HashAlgorithm, isSri: boolean, original: string): Uint8Array {
  const size = HASH_SIZES[algorithm];
  if (!isSri && rest.length === size * 2) return decodeBase16(rest);
  if (!isSri && rest.length === base32Length(size)) {
    try {
      return decodeBase32(rest);
    } catch (error) {
      if (error instanceof Base32Error) throw new HashError(`invalid base-32 hash '${original}': ${error.message}`);
      throw error;
    }
  }
  if (isSri || rest.length === base64Length(size)) {
    const digest = decodeBase64(rest);
    if (digest.length !== size) throw new HashError(`invalid ${isSri ? 'SRI' : 'base-64'} hash '${original}': expected ${size} bytes for ${algorithm}, got ${digest.length}`);
    return digest;
  }
  throw new HashError(`hash '${original}' has wrong length for hash type '${algorithm}'`);
}

/**
 * Parses a hash in any form Nix accepts: `algo:` + base16/base32/base64, SRI `algo-base64`,
 * or a bare digest when `algorithm` is given. A prefix that contradicts `algorithm` is an error.
 */
export function parseHash(text: string, algorithm?: HashAlgorithm): Hash {
  let rest = text;
  let prefixed: HashAlgorithm | undefined;
  let isSri = false;
  const colon = text.indexOf(':');
  const dash = text.indexOf('-');
  if (colon >= 0) {
    prefixed = parseHashAlgorithm(text.slice(0, colon));
    rest = text.slice(colon + 1);
  } else if (dash >= 0) {
    prefixed = parseHashAlgorithm(text.slice(0, dash));
    rest = text.slice(dash + 1);
    isSri = true;
  }
  if (prefixed !== undefined && algorithm !== undefined && prefixed !== algorithm) {
    throw new HashError(`hash '${text}' should have type '${algorithm}'`);
  }
  const resolved = prefixed ?? algorithm;
  if (resolved === undefined) {
    throw new HashError(`hash '${text}' does not include a type, nor is the type otherwise known from context: prefix it with 'sha256:' or use SRI form`);
  }
  return { algorithm: resolved, digest: decodeDigest(rest, resolved, isSri, text) };
}

/** Like parseHash but requires the algorithm in the text (`algo:…` or SRI), as narinfo fields do. */
export function parsePrefixedHash(text: string): Hash {
  if (!text.includes(':') && !text.includes('-')) {
    throw new HashError(`hash '${text}' does not include a type: expected 'algo:digest' or SRI 'algo-base64'`);
  }
  return parseHash(text);
}

/** Prints a hash; `sri` always carries its algorithm, the other encodings only when `withPrefix`. */
export function formatHash(hash: Hash, encoding: HashEncoding, withPrefix = true): string {
  if (encoding === 'sri') return `${hash.algorithm}-${encodeBase64(hash.digest)}`;
  const body =
    encoding === 'base16' ? encodeBase16(hash.digest) : encoding === 'base32' ? encodeBase32(hash.digest) : encodeBase64(hash.digest);
  return withPrefix ? `${hash.algorithm}:${body}` : body;
}

/** True when both hashes have the same algorithm and digest. */
export function hashEquals(a: Hash, b: Hash): boolean {
  return a.algorithm === b.algorithm && a.digest.length === b.digest.length && a.digest.every((byte, i) => byte === b.digest[i]);
}

/**
 * A NAR hash in the one form it travels in between roles and lives in PostgreSQL and narinfo
 * (`sha256:<nix base32>`): compared as a string, turned into bytes only where bytes are needed.
 */
export type NarHash = string & { readonly __narHash: never };

/** The NAR hash form of a SHA-256 digest. */
export function toNarHash(hash: Hash): NarHash {
  if (hash.algorithm !== 'sha256') throw new HashError(`a NAR hash is SHA-256, not ${hash.algorithm}`);
  return formatHash(hash, 'base32') as NarHash;
}

/** Checks a NAR hash from outside (any form Nix accepts) and returns it in the one form. */
export function parseNarHash(text: string): NarHash {
  return toNarHash(parsePrefixedHash(text));
}
