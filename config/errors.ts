/** Typed errors of the configuration layer. */

/** One problem found in the configuration, located by file + dotted key or by environment variable. */
export interface ConfigProblem {
  /** Where the bad value came from: `/etc/harmonia-ci.toml: limits.build-timeout` or `HARMONIA_CI_API_PORT`. */
  location: string;
  message: string;
}

/** The configuration (server TOML, environment or `.harmonia-ci.toml`) is invalid. */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(
      problems.length === 1
        ? `invalid configuration: ${formatProblem(problems[0] as ConfigProblem)}`
        : `invalid configuration:\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/** A secret file named in the configuration could not be read. */
export class SecretFileError extends Error {
  constructor(
    readonly key: string,
    readonly path: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot read ${key} from ${path}: ${reason}; create the file or point ${key} at an existing one`, { cause });
    this.name = 'SecretFileError';
  }
}

function formatProblem(problem: ConfigProblem): string {
  return `${problem.location}: ${problem.message}`;
}
