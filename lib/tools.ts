/**
 * Locating external programs (the Temporal CLI, SeaweedFS, Nix). The lookup order is
 * the one scripts/bootstrap.sh installs for: an explicit environment variable, then
 * PATH, then the project's own .tools/venv/bin.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json), derived from this file's location. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** An external program that is not installed where we look for it. */
export class ToolNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolNotFoundError';
  }
}

export interface ToolSpec {
  /** Executable name, e.g. `temporal`. */
  name: string;
  /** Environment variable that overrides the lookup with a full path. */
  envVar?: string;
  /** What to tell the user when the program is missing, e.g. "run `npm run bootstrap`". */
  installHint: string;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Returns the absolute path of a program, or throws ToolNotFoundError saying how to install it. */
export function locateTool(spec: ToolSpec, env: NodeJS.ProcessEnv = process.env): string {
  const override = spec.envVar ? env[spec.envVar] : undefined;
  if (override) {
    if (isExecutableFile(override)) return override;
    throw new ToolNotFoundError(`${spec.envVar}=${override} is not an executable file; point it at the ${spec.name} binary or unset it.`);
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutableFile(join(dir, spec.name))) return join(dir, spec.name);
  }
  const bundled = join(PROJECT_ROOT, '.tools', 'venv', 'bin', spec.name);
  if (isExecutableFile(bundled)) return bundled;
  const where = spec.envVar ? `${spec.envVar}, PATH or ${bundled}` : `PATH or ${bundled}`;
  throw new ToolNotFoundError(`${spec.name} not found (looked in ${where}); ${spec.installHint}.`);
}

/** The Temporal CLI (`temporal`), which runs the local dev server. */
export function locateTemporalCli(env: NodeJS.ProcessEnv = process.env): string {
  return locateTool({ name: 'temporal', envVar: 'HARMONIA_CI_TEMPORAL_CLI', installHint: '`npm run bootstrap` installs it into .tools/venv' }, env);
}
