/** Plain-text output of the operator commands: aligned tables, durations, ages. */

/** Rows as columns padded to their widest cell; the last column is never padded. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - [...cell].length))).join('  '))
    .map((line) => line.trimEnd())
    .join('\n');
}

/** `0.8 s`, `42 s`, `3 min 5 s`, `2 h 10 min`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** How long ago `iso` was, relative to `now`. */
export function formatAge(iso: string | null, now = Date.now()): string {
  if (iso === null) return '-';
  return `${formatDuration(Math.max(0, (now - Date.parse(iso)) / 1000))} ago`;
}

/** Seconds between two ISO times; null if either is missing. */
export function secondsBetween(from: string | null, to: string | null): number | null {
  return from === null || to === null ? null : (Date.parse(to) - Date.parse(from)) / 1000;
}

/** The first line of a message, for one-line summaries. */
export const firstLine = (text: string | null): string => (text ?? '').split('\n')[0]!.trim();
