/**
 * Nix's base32: its own alphabet (no e, o, t, u) and a reversed bit order, so the
 * first character encodes the most significant bits of the *last* byte. Matches
 * printHash32/parseHash32 in libutil/hash.cc.
 */
import { Base32Error } from './errors.ts';

export const BASE32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DIGIT_VALUES: ReadonlyMap<string, number> = new Map([...BASE32_ALPHABET].map((c, i) => [c, i]));

/** Length in characters of the base32 encoding of `byteLength` bytes. */
export function base32Length(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

/** Encodes bytes in Nix base32 (as `nix-hash --to-base32` prints). */
export function encodeBase32(bytes: Uint8Array): string {
  const size = bytes.length;
  let out = '';
  for (let n = base32Length(size) - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const low = bytes[i]! >> j;
    const high = i + 1 < size ? bytes[i + 1]! << (8 - j) : 0;
    out += BASE32_ALPHABET[(low | high) & 0x1f];
  }
  return out;
}

/** Decodes Nix base32; rejects foreign characters, impossible lengths and non-zero padding bits. */
export function decodeBase32(text: string): Uint8Array {
  const size = Math.floor((text.length * 5) / 8);
  if (base32Length(size) !== text.length) {
    throw new Base32Error(`invalid Nix base32 '${text}': length ${text.length} is not the encoding of any byte count`);
  }
  const bytes = new Uint8Array(size);
  for (let n = 0; n < text.length; n++) {
    const c = text[text.length - n - 1]!;
    const digit = DIGIT_VALUES.get(c);
    if (digit === undefined) {
      throw new Base32Error(`invalid Nix base32 '${text}': character '${c}' is not in the alphabet ${BASE32_ALPHABET}`);
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    bytes[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < size) bytes[i + 1]! |= carry;
    else if (carry !== 0) throw new Base32Error(`invalid Nix base32 '${text}': its leading character sets bits beyond the digest`);
  }
  return bytes;
}

