/** Parsing of the per-repository `.harmonia-ci.toml`. */
import { ConfigError } from './errors.ts';
import { dottedKey, problemsFromIssues } from './issues.ts';
import { repoConfigSchema } from './repo-schema.ts';
import { parseTomlDocument } from './toml.ts';
import type { RepoConfig } from './types.ts';

/** Name of the file read from the root of an evaluated commit. */
export const REPO_CONFIG_FILE = '.harmonia-ci.toml';

/**
 * Validates a `.harmonia-ci.toml`; `sourceName` says where it came from in messages
 * (e.g. `owner/repo@abc123:.harmonia-ci.toml`). Throws `ConfigError`.
 */
export function parseRepoConfig(text: string, sourceName: string): RepoConfig {
  const raw = parseTomlDocument(text, sourceName);
  const result = repoConfigSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(
    problemsFromIssues(result.error.issues, repoConfigSchema, (path) =>
      path.length === 0 ? sourceName : `${sourceName}: ${dottedKey(path)}`,
    ),
  );
}

/** The configuration of a repository without a `.harmonia-ci.toml`. */
export function defaultRepoConfig(): RepoConfig {
  return repoConfigSchema.parse({});
}
