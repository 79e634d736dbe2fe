/**
 * Before the signer signs a `.drv` file or an input source that an evaluator uploaded, it checks
 * that the store path is what the contents address: a `.drv` (or `builtins.toFile`) is a text path
 * over its bytes and references; a source (`nix-store --add`, `builtins.path`) is a recursive
 * sha256 over its NAR; a flat fixed-output path hashes the file's bytes. A path that matches none
 * is refused: an evaluator cannot get a signature on a `.drv` that says something else than its
 * name promises, which builders would otherwise trust.
 */
import { formatHash, type Hash } from '../../daemon/core/hash.ts';
import { makeFixedOutputPath, makeTextPath, parseStorePath, type StorePath } from '../../daemon/core/store-path.ts';

/** What a NAR addresses: its own hash and size, and the hash of its bytes when it is one plain file (activities/signer/inspect.ts reads it). */
export interface NarAddress {
  narHash: Hash;
  narSize: number;
  /** sha256 of the file's bytes, when the NAR holds one regular, non-executable file. */
  fileHash?: Hash;
}

const samePath = (a: StorePath, b: StorePath): boolean => a.hashPart === b.hashPart && a.name === b.name;

/**
 * Checks that `path` is addressed by the NAR read into `address` and `references`; returns the `CA`
 * value Nix writes for it. Throws naming the path when it is not content-addressed so.
 */
export function contentAddressOf(path: string, address: NarAddress, references: readonly string[]): string {
  const claimed = parseStorePath(path);
  const others = references.filter((ref) => ref !== path).map((ref) => parseStorePath(ref));
  const selfReference = references.includes(path);
  const { fileHash, narHash } = address;
  if (fileHash && !selfReference) {
    if (samePath(makeTextPath(claimed.name, fileHash, others), claimed)) return `text:${formatHash(fileHash, 'base32')}`;
    if (others.length === 0 && samePath(makeFixedOutputPath({ method: 'flat', hash: fileHash, name: claimed.name }), claimed)) {
      return `fixed:${formatHash(fileHash, 'base32')}`;
    }
  }
  if (samePath(makeFixedOutputPath({ method: 'recursive', hash: narHash, name: claimed.name, references: others, hasSelfReference: selfReference }), claimed)) {
    return `fixed:r:${formatHash(narHash, 'base32')}`;
  }
  throw new Error(
    `${path} is not what its contents address (neither a text file such as a .drv, nor a source added by path, nor a flat ` +
      'fixed-output file, with the references given): the signer refuses to sign it',
  );
}
