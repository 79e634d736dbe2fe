/**
 * Loading the server configuration: TOML file, then `HARMONIA_CI_*` environment
 * variables on top (each key has one, see config/keys.ts), validated by the schema.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from './errors.ts';
import { dottedKey, problemsFromIssues } from './issues.ts';
import { ENV_ALIASES, envNameForKey, SERVER_KEYS } from './keys.ts';
import type { KeyKind } from './keys.ts';
import { serverConfigSchema } from './schema.ts';
import { parseTomlDocument } from './toml.ts';
import type { DefaultsContext } from './schema.ts';
import type { ServerConfig } from './types.ts';

export interface LoadServerConfigOptions {
  /** TOML file to read; defaults to `$HARMONIA_CI_CONFIG`; with neither, only the environment and defaults apply. */
  file?: string;
  /** Environment to read overrides from (pass `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Base for relative paths given in the environment and for the default state directory. */
  cwd?: string;
}

type Table = Record<string, unknown>;

/** Reads, merges and validates the server configuration; throws `ConfigError` naming every bad key. */
export async function loadServerConfig(options: LoadServerConfigOptions): Promise<ServerConfig> {
  const cwd = options.cwd ?? process.cwd();
  const fileOption = options.file ?? nonEmpty(options.env.HARMONIA_CI_CONFIG);
  const file = fileOption === undefined ? undefined : resolve(cwd, fileOption);
  const raw = file === undefined ? {} : await readTomlFile(file);
  if (file !== undefined) resolveRelativePaths(raw, dirname(file));

  const origins = new Map<string, string>();
  for (const [key, kind] of SERVER_KEYS) {
    const names = [envNameForKey(key), ...(ENV_ALIASES[key] ?? [])];
    const name = names.find((n) => nonEmpty(options.env[n]) !== undefined);
    if (name === undefined) continue;
    setDotted(raw, key, fromEnvironment(options.env[name] as string, kind, cwd));
    origins.set(key, name);
  }

  const schema = serverConfigSchema(machineDefaults(cwd));
  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(
    problemsFromIssues(result.error.issues, schema, (path) => {
      const key = dottedKey(path);
      const variable = origins.get(key.replace(/\[.*$/, ''));
      if (variable !== undefined) return `environment variable ${variable}`;
      if (file !== undefined) return key === '' ? file : `${file}: ${key}`;
      return key === '' ? 'configuration' : `configuration key ${key}`;
    }),
  );
}

/** Values the defaults depend on, for this machine. */
export function machineDefaults(cwd: string): DefaultsContext {
  const arch = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' }[process.arch as string] ?? process.arch;
  return { cwd, system: `${arch}-${process.platform}`, cpus: availableParallelism() };
}

async function readTomlFile(file: string): Promise<Table> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ location: file, message: `cannot read the configuration file (${(error as Error).message})` }]);
  }
  return parseTomlDocument(text, file);
}

/** Paths in the file are relative to the file, like in most daemons' configuration. */
function resolveRelativePaths(raw: Table, base: string): void {
  for (const [key, kind] of SERVER_KEYS) {
    const value = getDotted(raw, key);
    if (typeof value === 'string' && isRelativeLocal(value, kind)) setDotted(raw, key, resolve(base, value));
  }
}

function isRelativeLocal(value: string, kind: KeyKind): boolean {
  if (kind === 'path') return value !== '' && !isAbsolute(value);
  if (kind === 'location') return value !== '' && !isAbsolute(value) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value);
  return false;
}

function fromEnvironment(value: string, kind: KeyKind, cwd: string): unknown {
  if (isRelativeLocal(value, kind)) return resolve(cwd, value);
  if (kind === 'integer') return /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (kind === 'boolean') return value.trim() === 'true' ? true : value.trim() === 'false' ? false : value;
  if (kind === 'list') return value.split(/[,\s]+/).filter((item) => item !== '');
  if (kind === 'substituters') return substitutersFromEnvironment(value);
  if (kind === 'json') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      // Left as text: the schema then says what it expected.
      return value;
    }
  }
  return value;
}

/**
 * A list like the others (items split at commas and white space) where each URL opens an entry
 * and the public keys after it belong to it: `https://cache.nixos.org cache.nixos.org-1:… file:///srv/mirror mirror-1:…`.
 * A key before any URL is left as an entry of its own, which the schema then names as wrong.
 */
function substitutersFromEnvironment(value: string): unknown[] {
  const entries: Array<{ url?: string; 'public-keys': string[] } | string> = [];
  for (const item of value.split(/[,\s]+/).filter((text) => text !== '')) {
    const last = entries.at(-1);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(item)) entries.push({ url: item, 'public-keys': [] });
    else if (last !== undefined && typeof last !== 'string') last['public-keys'].push(item);
    else entries.push(item);
  }
  return entries;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function getDotted(table: Table, key: string): unknown {
  let node: unknown = table;
  for (const part of key.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Table)[part];
  }
  return node;
}

function setDotted(table: Table, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = table;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    // An environment override wins even where the file put a scalar instead of a table.
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
    node = node[part] as Table;
  }
  node[parts[parts.length - 1] as string] = value;
}
