/** TOML parsing with errors located by file, line and column. */
import { parse as parseToml, TomlError } from 'smol-toml';
import { ConfigError } from './errors.ts';

/** Parses TOML into plain objects; a syntax error becomes a `ConfigError` at `source:line:column`. */
export function parseTomlDocument(text: string, source: string): Record<string, unknown> {
  try {
    return toPlain(parseToml(text)) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const firstLine = error.message.split('\n')[0] ?? error.message;
    throw new ConfigError([{ location: `${source}:${error.line}:${error.column}`, message: firstLine }]);
  }
}

/** smol-toml returns null-prototype objects; the schemas and camelize expect plain ones. */
function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}
