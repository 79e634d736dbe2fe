/** Parsing of the human-friendly durations and sizes used in configuration files. */

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  // Like Nix and coreutils, a bare K/M/G/T suffix is binary; an explicit "B" after it is SI.
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

export const DURATION_EXPECTATION = 'a duration such as "4h", "30m", "90s", "1h30m", "90d" or a number of seconds';
export const SIZE_EXPECTATION = 'a size such as "4G", "64MiB", "500MB" or a number of bytes';

/** Milliseconds in a duration: "4h", "1h30m", "90s", "250ms", "90d", or a number of seconds. Undefined if malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  const text = value.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const part = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match; match = part.exec(text)) {
    total += Number(match[1]) * (durationUnits[match[2] as string] as number);
    consumed = part.lastIndex;
  }
  return consumed > 0 && consumed === text.length ? Math.round(total) : undefined;
}

/** Bytes in a size: "4G" (binary), "64MiB", "500MB" (SI), "1024", or a number of bytes. Undefined if malformed. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(value.trim().toLowerCase());
  if (!match) return undefined;
  const unit = sizeUnits[match[2] as string];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
