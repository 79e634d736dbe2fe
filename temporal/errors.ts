/** Typed errors of the Temporal plumbing. Each names the server, file or attribute at fault and the fix. */

/** Base class: every error thrown by temporal/ is a TemporalSetupError. */
export class TemporalSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The Temporal frontend at an address could not be reached or refused the handshake. */
export class TemporalConnectionError extends TemporalSetupError {
  constructor(
    readonly address: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A TLS certificate or key file is missing, unreadable or given without its partner. */
export class TemporalTlsError extends TemporalSetupError {}

/** The namespace does not exist, or could not be registered or described. */
export class TemporalNamespaceError extends TemporalSetupError {}

/** A search attribute could not be registered, or exists with another type. */
export class SearchAttributeError extends TemporalSetupError {}

/** The local `temporal server start-dev` process failed to start or to answer. */
export class DevServerError extends TemporalSetupError {}

/** The payload codec's key is missing or wrong, or a payload cannot be decrypted. */
export class TemporalCodecError extends TemporalSetupError {}
