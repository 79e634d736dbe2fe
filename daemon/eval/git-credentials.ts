/**
 * Git credentials for fetching a project's private inputs: one git-credential-store file per
 * project, given to that project's trusted evaluations only, through environment variables that
 * configure git for that one process (no system or user configuration, no global helper).
 */
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { GIT_ISOLATION } from './process.ts';

const PROJECT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;

/** The credential file of a project: `<dir>/<owner>/<repo>`; undefined for a name that could leave the directory. */
export function projectCredentialFile(dir: string, projectName: string): string | undefined {
  if (!PROJECT_NAME.test(projectName) || projectName.split('/').some((segment) => segment === '..' || segment === '.')) return undefined;
  return join(dir, projectName);
}

/**
 * The environment that lets git (run by Nix) fetch with the project's credential file, if it has
 * one, and with nothing else: git's system and user configuration are left out either way.
 */
export async function projectGitEnvironment(dir: string | undefined, projectName: string | undefined): Promise<Record<string, string>> {
  const file = dir === undefined || projectName === undefined ? undefined : projectCredentialFile(dir, projectName);
  const readable = file !== undefined && (await access(file, constants.R_OK).then(() => true, () => false));
  if (!readable) return { ...GIT_ISOLATION };
  return {
    ...GIT_ISOLATION,
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'credential.helper',
    // git runs the helper through the shell: the path is quoted.
    GIT_CONFIG_VALUE_0: `store --file='${file.replaceAll("'", `'\\''`)}'`,
  };
}
