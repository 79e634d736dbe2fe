/** The signing key: read from the configured file, or on one machine generated once under the state directory. */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { formatKey, generateKeyPair, parseSecretKey, publicKeyOf, type SecretKey } from '../../daemon/core/signing.ts';

export interface SigningKey {
  secretKey: SecretKey;
  /** `name:base64`, what users put in `trusted-public-keys`. */
  publicKey: string;
  /** The secret key file. */
  file: string;
  /** True when this call generated the key. */
  created: boolean;
}

/** Reads a Nix secret key file (`nix-store --generate-binary-cache-key` or `harmonia-ci keys generate`). */
export async function readSigningKey(file: string): Promise<SigningKey> {
  const secretKey = parseSecretKey(await readFile(file, 'utf8'));
  return { secretKey, publicKey: formatKey(publicKeyOf(secretKey)), file, created: false };
}

/** `<stateDir>/signing-key` (and `.pub`), generated on first use and kept: clients trust it once. */
export async function ensureLocalSigningKey(stateDir: string): Promise<SigningKey> {
  const file = join(stateDir, 'signing-key');
  try {
    return await readSigningKey(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const name = `${hostname().replace(/[^A-Za-z0-9._-]/g, '-') || 'localhost'}-harmonia-ci-1`;
  const { secretKey, publicKey } = generateKeyPair(name);
  await mkdir(stateDir, { recursive: true });
  // 'wx': two processes starting at once must not both write a key; the loser reads the winner's.
  try {
    await writeFile(file, formatKey(secretKey), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readSigningKey(file);
    throw error;
  }
  await writeFile(`${file}.pub`, formatKey(publicKey), { mode: 0o644 });
  return { secretKey, publicKey: formatKey(publicKey), file, created: true };
}
