/** Typed errors of the forge layer: HTTP failures classified for retrying, and setup mistakes. */

/**
 * A forge answered with an error or could not be reached. `transient` failures (5xx, rate
 * limits, network) are worth retrying after `retryAfterMs` when the forge said how long.
 */
export class ForgeRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly transient: boolean,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ForgeRequestError';
  }
}

/** The forge a repository lives on is not configured in this server. */
export class ForgeNotConfiguredError extends Error {
  constructor(forge: string) {
    super(
      forge === 'github'
        ? 'GitHub is not configured: set forges.github.app-id with private-key-file, or forges.github.token-file'
        : `${forge} is not configured: set forges.${forge}.url and forges.${forge}.token-file`,
    );
    this.name = 'ForgeNotConfiguredError';
  }
}

/** A project or repository named by a person does not exist or is ambiguous. */
export class ProjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProjectError';
  }
}
