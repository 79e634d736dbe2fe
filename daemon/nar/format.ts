/**
 * The NAR wire format shared by the packer and the parser: every item is a string
 * framed as a little-endian u64 length, the bytes, and zero padding to 8 bytes.
 */

export const NAR_MAGIC = 'nix-archive-1';

/** Longest entry name any Linux filesystem stores (NAME_MAX). */
export const MAX_NAME_LENGTH = 255;
/** Longest symlink target the kernel accepts (PATH_MAX without its NUL). */
export const MAX_TARGET_LENGTH = 4095;

const ZEROS = new Uint8Array(8);

/** Bytes of zero padding that follow a string payload of `length` bytes. */
export function paddingLength(length: number): number {
  return (8 - (length % 8)) % 8;
}

/** The zero padding after a payload of `length` bytes (a shared, read-only view). */
export function padding(length: number): Uint8Array {
  return ZEROS.subarray(0, paddingLength(length));
}

/** Encodes a u64 little-endian length field. */
export function encodeU64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeUIntLE(value % 2 ** 32, 0, 4);
  out.writeUIntLE(Math.floor(value / 2 ** 32), 4, 4);
  return out;
}

/** Frames one NAR string (ASCII tags or raw bytes). */
export function encodeString(value: string | Uint8Array): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  return Buffer.concat([encodeU64(bytes.length), bytes, padding(bytes.length)]);
}

/** Frames a sequence of NAR strings into one buffer. */
export function encodeStrings(...values: Array<string | Uint8Array>): Buffer {
  return Buffer.concat(values.map(encodeString));
}

/** Why `name` cannot be a directory entry, or undefined when it can. */
export function invalidNameReason(name: Uint8Array): string | undefined {
  if (name.length === 0) return 'entry name is empty';
  if (name.length > MAX_NAME_LENGTH) return `entry name is ${name.length} bytes long, more than the ${MAX_NAME_LENGTH} a filesystem allows`;
  if (name.length <= 2 && name.every((byte) => byte === 0x2e)) return `entry name '${Buffer.from(name).toString('latin1')}' is not allowed`;
  if (name.includes(0x2f)) return `entry name ${describeBytes(name)} contains '/'`;
  if (name.includes(0)) return `entry name ${describeBytes(name)} contains a NUL byte`;
  return undefined;
}

/** Why `target` cannot be a symlink target, or undefined when it can. */
export function invalidTargetReason(target: Uint8Array): string | undefined {
  if (target.length === 0) return 'symlink target is empty';
  if (target.includes(0)) return `symlink target ${describeBytes(target)} contains a NUL byte`;
  return undefined;
}

/** Quotes bytes for an error message, escaping what is not printable and cutting long values. */
export function describeBytes(bytes: Uint8Array, limit = 64): string {
  const shown = JSON.stringify(Buffer.from(bytes.subarray(0, limit)).toString('utf8'));
  return bytes.length > limit ? `${shown}… (${bytes.length} bytes)` : shown;
}
