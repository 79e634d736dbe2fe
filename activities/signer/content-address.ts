/**
 * Before the signer signs a `.drv` file or an input source that an evaluator uploaded, it checks
 * that the store path is what the contents address: a `.drv` (or `builtins.toFile`) is a text path
 * over its bytes and references; a source (`nix-store --add`, `builtins.path`) is a recursive
 * sha256 over its NAR; a flat fixed-output path hashes the file's bytes. A path that matches none
 * is refused: an evaluator cannot get a signature on a `.drv` that says something else than its
 * name promises, which builders would otherwise trust. Returns the narinfo's `CA` field.
 */
import { formatHash, hashBytes, type Hash } from '../../daemon/core/hash.ts';
import { makeFixedOutputPath, makeTextPath, parseStorePath, type StorePath } from '../../daemon/core/store-path.ts';
import { parseNar } from '../../daemon/nar/parse.ts';

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The bytes of a NAR that holds one regular, non-executable file; undefined for anything else. */
async function singleFile(nar: Uint8Array): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let single = true;
  for await (const event of parseNar(once(nar))) {
    if (event.type === 'regular' && event.path.length === 0 && !event.executable) continue;
    if (event.type === 'contents') chunks.push(Buffer.from(event.chunk));
    else single = false;
  }
  return single ? Buffer.concat(chunks) : undefined;
}

const samePath = (a: StorePath, b: StorePath): boolean => a.hashPart === b.hashPart && a.name === b.name;

/**
 * Checks that `path` is addressed by `nar` (whose sha256 is `narHash`) and `references`; returns
 * the `CA` value Nix writes for it. Throws naming the path when it is not content-addressed so.
 */
export async function contentAddressOf(path: string, nar: Uint8Array, narHash: Hash, references: readonly string[]): Promise<string> {
  const claimed = parseStorePath(path);
  const others = references.filter((ref) => ref !== path).map((ref) => parseStorePath(ref));
  const selfReference = references.includes(path);
  const file = await singleFile(nar);
  if (file && !selfReference) {
    const contentHash = hashBytes('sha256', file);
    if (samePath(makeTextPath(claimed.name, contentHash, others), claimed)) return `text:${formatHash(contentHash, 'base32')}`;
    if (others.length === 0 && samePath(makeFixedOutputPath({ method: 'flat', hash: contentHash, name: claimed.name }), claimed)) {
      return `fixed:${formatHash(contentHash, 'base32')}`;
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
