/**
 * Ed25519 signing with Nix's key files (libutil/signature/local-keys.cc): `name:base64`, the
 * secret key being libsodium's 64 bytes (32-byte seed followed by the public key).
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { SigningError } from './errors.ts';
import { decodeBase64, encodeBase64 } from './hash.ts';

/** A named Ed25519 secret key; `key` is seed ‖ public key, 64 bytes. */
export interface SecretKey {
  name: string;
  key: Uint8Array;
}

/** A named Ed25519 public key of 32 bytes. */
export interface PublicKey {
  name: string;
  key: Uint8Array;
}

const SEED_BYTES = 32;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const utf8 = new TextEncoder();

function splitNamed(text: string, what: string): { name: string; payload: Uint8Array } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon <= 0) throw new SigningError(`${what} '${trimmed.slice(0, 40)}' is not of the form 'name:base64'`);
  try {
    return { name: trimmed.slice(0, colon), payload: decodeBase64(trimmed.slice(colon + 1)) };
  } catch {
    throw new SigningError(`${what} named '${trimmed.slice(0, colon)}' has invalid base64 after the ':'`);
  }
}

/** Throws unless `name` can name a key: non-empty, no ':' and no whitespace. */
export function validateKeyName(name: string): void {
  if (name === '' || /[:\s]/.test(name)) {
    throw new SigningError(`key name '${name}' is not usable: use a non-empty name without ':' or whitespace, e.g. cache.example.org-1`);
  }
}

/** Parses the contents of a secret key file (as written by `nix-store --generate-binary-cache-key`). */
export function parseSecretKey(text: string): SecretKey {
  const { name, payload } = splitNamed(text, 'secret key');
  if (payload.length !== SEED_BYTES + PUBLIC_KEY_BYTES) {
    throw new SigningError(`secret key '${name}' decodes to ${payload.length} bytes, expected 64: is this a public key file?`);
  }
  const derived = ed25519.getPublicKey(payload.subarray(0, SEED_BYTES));
  if (!derived.every((b, i) => b === payload[SEED_BYTES + i])) {
    throw new SigningError(`secret key '${name}' is corrupt: its public half does not match its seed`);
  }
  return { name, key: payload };
}

/** Parses a public key as written in key files and `trusted-public-keys`. */
export function parsePublicKey(text: string): PublicKey {
  const { name, payload } = splitNamed(text, 'public key');
  if (payload.length !== PUBLIC_KEY_BYTES) {
    throw new SigningError(`public key '${name}' decodes to ${payload.length} bytes, expected 32: is this a secret key file?`);
  }
  return { name, key: payload };
}

/** `name:base64`, the exact file contents Nix writes (no trailing newline). */
export function formatKey(key: SecretKey | PublicKey): string {
  return `${key.name}:${encodeBase64(key.key)}`;
}

/** The public key belonging to a secret key. */
export function publicKeyOf(secretKey: SecretKey): PublicKey {
  return { name: secretKey.name, key: secretKey.key.slice(SEED_BYTES) };
}

/** A fresh key pair; `seed` (32 bytes) makes it deterministic, otherwise it comes from the platform CSPRNG. */
export function generateKeyPair(name: string, seed?: Uint8Array): { secretKey: SecretKey; publicKey: PublicKey } {
  validateKeyName(name);
  if (seed !== undefined && seed.length !== SEED_BYTES) throw new SigningError(`key seed must be ${SEED_BYTES} bytes, got ${seed.length}`);
  const secretSeed = seed ?? ed25519.utils.randomSecretKey();
  const publicKey = ed25519.getPublicKey(secretSeed);
  const key = new Uint8Array(SEED_BYTES + PUBLIC_KEY_BYTES);
  key.set(secretSeed);
  key.set(publicKey, SEED_BYTES);
  return { secretKey: { name, key }, publicKey: { name, key: publicKey } };
}

/** DER prefix of a PKCS #8 Ed25519 private key (RFC 8410), followed by the 32-byte seed. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** The platform's key object of each secret key in use, made once. */
const platformKeys = new WeakMap<Uint8Array, KeyObject>();

/**
 * Signs a fingerprint, returning Nix's `name:base64(signature)` form used in `Sig:` lines.
 * Ed25519 signatures are deterministic (RFC 8032): the platform's OpenSSL gives the bytes
 * libsodium gives, about 15 times faster than signing in JavaScript, once per output published.
 */
export function signFingerprint(secretKey: SecretKey, fingerprint: string): string {
  let key = platformKeys.get(secretKey.key);
  if (key === undefined) {
    const seed = secretKey.key.subarray(0, SEED_BYTES);
    key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    platformKeys.set(secretKey.key, key);
  }
  return `${secretKey.name}:${sign(null, Buffer.from(fingerprint, 'utf8'), key).toString('base64')}`;
}

/**
 * True when `signature` (`name:base64`) is a valid signature of `fingerprint` by the key of
 * that name among `publicKeys`; false for an unknown name or a wrong signature, as Nix does.
 * Verification is strict RFC 8032 (not ZIP-215), matching libsodium.
 */
export function verifyFingerprint(fingerprint: string, signature: string, publicKeys: readonly PublicKey[]): boolean {
  const colon = signature.indexOf(':');
  if (colon <= 0) throw new SigningError(`signature '${signature}' is not of the form 'keyname:base64'`);
  const name = signature.slice(0, colon);
  const key = publicKeys.find((k) => k.name === name);
  if (key === undefined) return false;
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(signature.slice(colon + 1));
  } catch {
    throw new SigningError(`signature by '${name}' has invalid base64`);
  }
  if (bytes.length !== SIGNATURE_BYTES) throw new SigningError(`signature by '${name}' is ${bytes.length} bytes, expected ${SIGNATURE_BYTES}`);
  return ed25519.verify(bytes, utf8.encode(fingerprint), key.key, { zip215: false });
}
