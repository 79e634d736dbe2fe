/** Turns zod issues into configuration problems that name the key and say what was expected. */
import type { z } from 'zod';
import type { ConfigProblem } from './errors.ts';

interface SchemaNode {
  _zod: { def: { type: string; shape?: Record<string, SchemaNode>; innerType?: SchemaNode; in?: SchemaNode } };
}

/** Names the place a value came from, given its path in the configuration. */
export type Locator = (path: readonly PropertyKey[]) => string;

/** One problem per issue (and per unknown key), located with `locate`. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], schema: unknown, locate: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema as SchemaNode, issue.path);
      for (const key of issue.keys) {
        problems.push({ location: locate([...issue.path, key]), message: unknownKeyMessage(key, known) });
      }
      continue;
    }
    const input = (issue as { input?: unknown }).input;
    const missing = issue.code === 'invalid_type' && input === undefined;
    const message = missing ? `is missing; ${issue.message}` : input === undefined ? issue.message : `${issue.message}, got ${describe(input)}`;
    problems.push({ location: locate(issue.path), message });
  }
  return problems;
}

/** Dotted form of a configuration path: `limits.build-timeout`, `builder.systems[1]`. */
export function dottedKey(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out === '' ? String(part) : `${out}.${String(part)}`), '');
}

function unknownKeyMessage(key: string, known: string[]): string {
  const suggestion = closest(key, known);
  if (suggestion !== undefined) return `unknown key "${key}"; did you mean "${suggestion}"?`;
  return known.length > 0 ? `unknown key "${key}"; known keys here: ${known.join(', ')}` : `unknown key "${key}"`;
}

function knownKeysAt(schema: SchemaNode, path: readonly PropertyKey[]): string[] {
  let node: SchemaNode | undefined = schema;
  for (const segment of [...path, undefined]) {
    node = unwrap(node);
    const shape = node?._zod.def.shape;
    if (shape === undefined) return [];
    if (segment === undefined) return Object.keys(shape);
    node = shape[String(segment)];
  }
  return [];
}

function unwrap(node: SchemaNode | undefined): SchemaNode | undefined {
  let current = node;
  while (current) {
    const def = current._zod.def;
    if (def.innerType && ['optional', 'default', 'prefault', 'nullable'].includes(def.type)) current = def.innerType;
    else if (def.type === 'pipe' && def.in) current = def.in;
    else return current;
  }
  return current;
}

/** The known key a typo most likely meant (snake_case and camelCase spellings included). */
function closest(key: string, known: string[]): string | undefined {
  const kebab = key.replace(/_/g, '-').replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name === kebab ? 0 : editDistance(kebab, name);
    if (distance <= Math.max(1, Math.floor(name.length / 4)) && (best === undefined || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

/** Edit distance counting a swap of neighbours as one edit ("prot" → "port"). */
function editDistance(a: string, b: string): number {
  // d[i][j]: distance between the first i characters of a and the first j of b.
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return 'a date';
  if (value !== null && typeof value === 'object') return 'a table';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
