/**
 * Configuration types. The server configuration is read from a TOML file and
 * `HARMONIA_CI_*` environment variables (config/server.ts); each repository may
 * add a `.harmonia-ci.toml` (config/repo.ts). Durations are milliseconds, sizes
 * are bytes, secrets are `SecretFile`s read on demand.
 */
import type { z } from 'zod';
import type { serverConfigSchema } from './schema.ts';
import type { repoConfigSchema } from './repo-schema.ts';
import type { SecretFile } from './secrets.ts';

export type { CacheLocation } from './cache-location.ts';
export type { SecretFile } from './secrets.ts';

/** `build-timeout` → `buildTimeout`, at the type level. */
export type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** An object type with its keys (deeply) in camelCase; arrays and secret files unchanged. */
export type Camelize<T> = T extends SecretFile | readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T as K extends string ? CamelCase<K> : K]: Camelize<T[K]> }
    : T;

/** The validated server configuration. */
export type ServerConfig = z.output<ReturnType<typeof serverConfigSchema>>;
export type TemporalConfig = ServerConfig['temporal'];
export type ApiConfig = ServerConfig['api'];
export type CacheConfig = ServerConfig['cache'];
export type BuilderConfig = ServerConfig['builder'];
export type Limits = ServerConfig['limits'];
export type ForgesConfig = ServerConfig['forges'];
export type LogLevel = ServerConfig['log']['level'];
export type DeploymentTarget = ServerConfig['deployments'][number];
export type NotificationHook = ServerConfig['notifications'][number];

/** The validated per-repository `.harmonia-ci.toml`. */
export type RepoConfig = z.output<typeof repoConfigSchema>;
