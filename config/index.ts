/** The configuration layer: server TOML + environment, and per-repository `.harmonia-ci.toml`. */
export { loadServerConfig, machineDefaults } from './server.ts';
export type { LoadServerConfigOptions } from './server.ts';
export { parseRepoConfig, defaultRepoConfig, REPO_CONFIG_FILE } from './repo.ts';
export { ConfigError, SecretFileError } from './errors.ts';
export type { ConfigProblem } from './errors.ts';
export { SecretFile, readS3CredentialsFile } from './secrets.ts';
export type { S3Credentials } from './secrets.ts';
export { envNameForKey, ENV_ALIASES, SERVER_KEYS } from './keys.ts';
export { parseDuration, parseSize } from './units.ts';
export type * from './types.ts';
