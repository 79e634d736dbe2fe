/** Parsing of the per-repository `.harmonia-ci.toml`. */
import { ConfigError } from './errors.ts';
import { dottedKey, problemsFromIssues } from './issues.ts';
import { repoConfigSchema, type StatusMode } from './repo-schema.ts';
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

/** The evaluation settings a repository's file can change. */
export interface RepoTunableSettings {
  attrs: string[];
  allowIfd: boolean;
  /** 0: no limit. */
  evalTimeoutMs: number;
  statuses?: StatusMode | undefined;
}

/**
 * The project's settings as a repository's `.harmonia-ci.toml` may change them: the project
 * decides, the file only tightens. It turns import-from-derivation off but never on, and shortens
 * the eval timeout but never lengthens it; its `attrs` apply where the project names none. Its
 * `statuses` (how commit statuses are reported, no matter of trust) replaces the project's.
 */
export function applyRepoConfig<S extends RepoTunableSettings>(project: S, repo: RepoConfig): S {
  const timeouts = [project.evalTimeoutMs, repo.evalTimeout ?? 0].filter((ms) => ms > 0);
  return {
    ...project,
    attrs: project.attrs.length > 0 ? project.attrs : repo.attrs,
    allowIfd: project.allowIfd && repo.allowIfd !== false,
    evalTimeoutMs: timeouts.length > 0 ? Math.min(...timeouts) : 0,
    ...(repo.statuses ? { statuses: repo.statuses } : {}),
  };
}
