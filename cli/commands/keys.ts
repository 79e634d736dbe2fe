/** `harmonia-ci keys`: signing keys in the file format of `nix-store --generate-binary-cache-key`. */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { SigningError } from '../../daemon/core/errors.ts';
import { formatKey, generateKeyPair } from '../../daemon/core/signing.ts';
import { CliError } from '../errors.ts';
import { generateCodecKeyText } from '../../temporal/codec.ts';

interface GenerateOptions {
  secret: string;
  public: string;
}

/** Writes a new file, failing rather than replacing one that exists ('wx' is atomic about it). */
function writeNewFile(path: string, contents: string, mode: number): void {
  try {
    writeFileSync(path, contents, { flag: 'wx', mode });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(`${path} already exists: refusing to overwrite a key file; remove it or choose another path`);
    throw new CliError(`cannot write ${path}: ${(error as Error).message}`);
  }
}

/** Creates a key pair, writes the secret (mode 0600) and public key files, and returns the public key. */
export function generateKeyFiles(name: string, options: GenerateOptions): string {
  const secretPath = resolve(options.secret);
  const publicPath = resolve(options.public);
  if (secretPath === publicPath) throw new CliError('--secret and --public name the same file: give two different paths');
  for (const path of [secretPath, publicPath]) {
    if (existsSync(path)) throw new CliError(`${path} already exists: refusing to overwrite a key file; remove it or choose another path`);
  }
  let pair: ReturnType<typeof generateKeyPair>;
  try {
    pair = generateKeyPair(name);
  } catch (error) {
    if (error instanceof SigningError) throw new CliError(error.message);
    throw error;
  }
  writeNewFile(secretPath, formatKey(pair.secretKey), 0o600);
  try {
    writeNewFile(publicPath, formatKey(pair.publicKey), 0o644);
  } catch (error) {
    rmSync(secretPath, { force: true });
    throw error;
  }
  return formatKey(pair.publicKey);
}

/** Registers `keys generate` and `keys codec`. */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage binary cache signing keys (Nix key file format) and the Temporal payload codec key');
  keys
    .command('generate')
    .description('create an Ed25519 key pair usable as nix secret-key-files / trusted-public-keys')
    .argument('<name>', 'key name, conventionally <cache host>-<number>, e.g. cache.example.org-1')
    .requiredOption('--secret <file>', 'where to write the secret key (created with mode 0600)')
    .requiredOption('--public <file>', 'where to write the public key')
    .action((name: string, options: GenerateOptions) => {
      // The public key goes to stdout so it can be pasted into trusted-public-keys.
      process.stdout.write(`${generateKeyFiles(name, options)}\n`);
    });
  keys
    .command('codec')
    .description('create the key that encrypts Temporal payloads (temporal.codec-key-file; every role needs the same one)')
    .argument('<file>', 'where to write the key (created with mode 0600)')
    .action((file: string) => {
      writeNewFile(resolve(file), generateCodecKeyText(), 0o600);
    });
}
