/**
 * A job's `meta` as both evaluators report it (raw JSON: nix-eval-jobs' `--meta`, walk.nix) in
 * the shape harmonia-ci uses. Anything of an unexpected type is left out rather than refused:
 * `meta` is advisory, and nixpkgs' conventions vary between releases.
 */
import type { JobMeta } from './types.ts';

/** Longest description kept; a page shows a line, not a manual. */
const MAX_DESCRIPTION = 1000;
const MAX_ENTRIES = 50;

/** The used fields of a raw `meta` value; undefined when it has none of them. */
export function normalizeMeta(raw: unknown): JobMeta | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const fields = raw as Record<string, unknown>;
  const meta: JobMeta = {};
  if (typeof fields.description === 'string' && fields.description.trim() !== '') meta.description = fields.description.trim().slice(0, MAX_DESCRIPTION);
  const maintainers = names(fields.maintainers, ['name', 'github', 'email']);
  if (maintainers.length > 0) meta.maintainers = maintainers;
  const license = names(fields.license, ['spdxId', 'shortName', 'fullName']);
  if (license.length > 0) meta.license = license;
  const timeout = seconds(fields.timeout);
  if (timeout !== undefined) meta.timeout = timeout;
  const maxSilent = seconds(fields.maxSilent);
  if (maxSilent !== undefined) meta.maxSilent = maxSilent;
  return Object.keys(meta).length > 0 ? meta : undefined;
}

/** Strings, or attribute sets named by the first of `keys` they have; one value or a list of them. */
function names(value: unknown, keys: string[]): string[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const result: string[] = [];
  for (const item of list.slice(0, MAX_ENTRIES)) {
    if (typeof item === 'string' && item !== '') result.push(item);
    else if (typeof item === 'object' && item !== null) {
      const record = item as Record<string, unknown>;
      const name = keys.map((key) => record[key]).find((v): v is string => typeof v === 'string' && v !== '');
      if (name !== undefined) result.push(name);
    }
  }
  return result;
}

/** A positive whole number of seconds (Nix integers; a float is rounded up). */
function seconds(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return undefined;
  return Math.min(Math.ceil(value), 2 ** 31 - 1);
}
