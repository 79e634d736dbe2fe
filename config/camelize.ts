/** Turns the kebab-case keys of parsed TOML into camelCase property names. */
import type { Camelize } from './types.ts';

/** Deep copy of plain objects with camelCase keys; arrays and class instances are kept as they are. */
export function camelize<T>(value: T): Camelize<T> {
  return convert(value) as Camelize<T>;
}

function convert(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()), convert(inner)]),
  );
}
