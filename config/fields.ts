/** Zod building blocks for configuration values; each states in words what it expects. */
import { z } from 'zod';
import { SecretFile } from './secrets.ts';
import { DURATION_EXPECTATION, parseDuration, parseSize, SIZE_EXPECTATION } from './units.ts';

/** A non-empty string. */
export function text(expected = 'a non-empty string') {
  return z.string({ error: `expected ${expected}` }).min(1, { error: `expected ${expected}` });
}

/** A string matching a pattern, described in words for the error message. */
export function matching(pattern: RegExp, expected: string) {
  return z.string({ error: `expected ${expected}` }).regex(pattern, { error: `expected ${expected}` });
}

/** An integer within bounds. */
export function integer(min: number, max?: number) {
  const expected = max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
  const base = z.int({ error: `expected ${expected}` }).min(min, { error: `expected ${expected}` });
  return max === undefined ? base : base.max(max, { error: `expected ${expected}` });
}

/** A positive duration in milliseconds, written "4h", "30m", "90s" or as seconds. */
export function duration() {
  return z.unknown().transform((value, ctx) => {
    const ms = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : undefined;
    if (ms !== undefined && ms > 0) return ms;
    ctx.issues.push({ code: 'custom', message: `expected ${DURATION_EXPECTATION}`, input: value });
    return z.NEVER;
  });
}

/** A size in bytes, written "4G", "64MiB" or as bytes; `max` bounds it, named as written (e.g. "256K"). */
export function size(max?: { bytes: number; written: string }) {
  return z.unknown().transform((value, ctx) => {
    const bytes = typeof value === 'string' || typeof value === 'number' ? parseSize(value) : undefined;
    if (bytes !== undefined && (max === undefined || bytes <= max.bytes)) return bytes;
    const expected = bytes === undefined ? SIZE_EXPECTATION : `a size of at most ${max!.written}`;
    ctx.issues.push({ code: 'custom', message: `expected ${expected}`, input: value });
    return z.NEVER;
  });
}

/** A list of strings each matching a pattern. */
export function list(pattern: RegExp, expected: string) {
  return z.array(matching(pattern, expected), { error: `expected a list of ${expected} values` });
}

/** One of a fixed set of words. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}` });
}

/** A URL with one of the given schemes. */
export function url(schemes: readonly string[]) {
  const expected = `a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}`;
  return z.string({ error: `expected ${expected}` }).refine(
    (value) => {
      try {
        return schemes.includes(new URL(value).protocol.slice(0, -1));
      } catch {
        return false;
      }
    },
    { error: `expected ${expected}` },
  );
}

/** The path of a file holding a secret; the file is read later, by the role that needs it. */
export function secretFile(key: string) {
  return text('the path of a file holding the secret').transform((path) => new SecretFile(key, path));
}
