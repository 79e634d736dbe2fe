/**
 * Hand-written NAR encoder for tests: it shares no code with daemon/nar, so archives built
 * here (valid or deliberately broken) are independent of the code under test.
 */

/** One NAR string: u64 LE length, bytes, zero padding to 8. */
export function str(value: string | Uint8Array, pad = 0): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  const padding = Buffer.alloc((8 - (bytes.length % 8)) % 8, pad);
  return Buffer.concat([length, bytes, padding]);
}

/** A raw u64 LE field (for lengths that lie). */
export function u64(value: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(value);
  return out;
}

/** Concatenates NAR strings given as text and pre-encoded buffers. */
export function nar(...items: Array<string | Buffer>): Buffer {
  return Buffer.concat(items.map((item) => (typeof item === 'string' ? str(item) : item)));
}

/** Encodes the parts of a regular file node. */
export function regular(contents: string, executable = false): Buffer {
  return nar('(', 'type', 'regular', ...(executable ? ['executable', ''] : []), 'contents', str(contents), ')');
}

/** Encodes a symlink node. */
export function symlink(target: string): Buffer {
  return nar('(', 'type', 'symlink', 'target', str(target), ')');
}

/** Encodes a directory entry (name already encoded or given as text). */
export function entry(name: string | Buffer, node: Buffer): Buffer {
  return nar('entry', '(', 'name', typeof name === 'string' ? str(name) : name, 'node', node, ')');
}

/** Encodes a directory node around already-encoded entries. */
export function directory(...entries: Buffer[]): Buffer {
  return nar('(', 'type', 'directory', ...entries, ')');
}

/** The magic every NAR starts with. */
export const MAGIC = str('nix-archive-1');
