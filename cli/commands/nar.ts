/** `harmonia-ci nar …`: NAR dump, restore, hash and listing, interchangeable with nix-store's. */
import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import type { HashEncoding } from '../../daemon/core/hash.ts';
import { formatHash, parseHashAlgorithm } from '../../daemon/core/hash.ts';
import { NarError, NarFileError } from '../../daemon/nar/errors.ts';
import { narHash } from '../../daemon/nar/nar-hash.ts';
import { formatNarListing, listNar } from '../../daemon/nar/listing.ts';
import { writeNar } from '../../daemon/nar/pack.ts';
import { unpackNar } from '../../daemon/nar/unpack.ts';
import { CliError } from '../errors.ts';

const ENCODINGS: readonly HashEncoding[] = ['base32', 'base16', 'base64', 'sri'];

/** Turns the errors a user can fix into CliErrors; anything else stays a bug report with a stack. */
function explain(error: unknown, subject: string): unknown {
  if (error instanceof NarError) return new CliError(`${subject}: ${error.message}`);
  if (error instanceof NarFileError) return new CliError(error.message);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new CliError(`${subject}: ${(error as Error).message.replace(/^ENOENT: /, '')}; check the path`);
  if (code === 'EACCES' || code === 'EPERM') return new CliError(`${subject}: permission denied (${(error as Error).message})`);
  return error;
}

async function dump(path: string): Promise<void> {
  try {
    await writeNar(path, process.stdout, { end: false });
  } catch (error) {
    // The reader went away (`| head`): stop quietly like any well-behaved filter.
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return;
    throw explain(error, `cannot dump '${path}'`);
  }
}

async function restore(dest: string): Promise<void> {
  try {
    await unpackNar(process.stdin, dest);
  } catch (error) {
    if (error instanceof NarError) {
      throw new CliError(`refusing to restore into '${dest}': ${error.message}; nothing was left at '${dest}'`);
    }
    throw explain(error, `cannot restore into '${dest}'`);
  }
}

async function hash(path: string, options: { type: string; format: string }): Promise<void> {
  const algorithm = parseHashAlgorithm(options.type);
  const encoding = ENCODINGS.find((name) => name === options.format);
  if (encoding === undefined) throw new CliError(`unknown hash format '${options.format}': use one of ${ENCODINGS.join(', ')}`);
  try {
    const result = await narHash(path, algorithm);
    process.stdout.write(`${formatHash(result.hash, encoding)}\n`);
  } catch (error) {
    throw explain(error, `cannot hash '${path}'`);
  }
}

async function list(file: string): Promise<void> {
  const source = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    process.stdout.write(formatNarListing(await listNar(source)));
  } catch (error) {
    throw explain(error, `cannot list '${file}'`);
  }
}

/** Registers `nar dump|restore|hash|ls`. */
export function registerNar(program: Command): void {
  const nar = program.command('nar').description('Nix archives (NAR), byte-compatible with nix-store --dump/--restore');
  nar
    .command('dump')
    .description('write the NAR of a file, directory or symlink to stdout (like nix-store --dump)')
    .argument('<path>', 'what to archive')
    .action(dump);
  nar
    .command('restore')
    .description('unpack a NAR read from stdin into <dest>, refusing malformed or hostile archives (like nix-store --restore)')
    .argument('<dest>', 'a path that does not exist yet')
    .action(restore);
  nar
    .command('hash')
    .description("print the hash of a path's NAR (like nix-hash --type sha256 --base32, with the algo: prefix)")
    .argument('<path>', 'what to hash')
    .option('--type <algorithm>', 'md5, sha1, sha256 or sha512', 'sha256')
    .option('--format <encoding>', ENCODINGS.join(', '), 'base32')
    .action(hash);
  nar
    .command('ls')
    .description("validate a NAR and print its listing as the .ls JSON Nix writes to binary caches")
    .argument('[nar-file]', "the NAR, or '-' for stdin", '-')
    .action(list);
}
