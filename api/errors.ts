/**
 * Typed HTTP errors. Route code throws these; the app's error handler turns them
 * into `{ error, requestId }` replies. Messages of 4xx errors reach the client and
 * should tell it what to change; 5xx messages are logged and never sent.
 */
export class HttpError extends Error {
  /** Sent as `Retry-After` when set. */
  retryAfterSeconds?: number;

  constructor(
    readonly statusCode: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'HttpError';
  }
}

/** The request is malformed or names something impossible (400). */
export class BadRequestError extends HttpError {
  constructor(message: string) {
    super(400, message);
    this.name = 'BadRequestError';
  }
}

/** The caller is not authenticated or the signature is wrong (401). */
export class UnauthorizedError extends HttpError {
  constructor(message: string) {
    super(401, message);
    this.name = 'UnauthorizedError';
  }
}

/** The caller is known but lacks the right to do this (403). */
export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super(403, message);
    this.name = 'ForbiddenError';
  }
}

/** The named thing does not exist (404). */
export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, message);
    this.name = 'NotFoundError';
  }
}

/** The request conflicts with the current state, e.g. cancelling a finished build (409). */
export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, message);
    this.name = 'ConflictError';
  }
}

/** Too many requests from this client right now (429, with `Retry-After`). */
export class TooManyRequestsError extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, message);
    this.name = 'TooManyRequestsError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A component the request needs is down and the client should come back (503 with
 * `Retry-After`). Unlike other 5xx errors the message is sent: it names the component, never
 * an address or a credential, so the forge's delivery log tells people why.
 */
export class RetryLaterError extends HttpError {
  constructor(message: string, retryAfterSeconds: number, options?: ErrorOptions) {
    super(503, message, options);
    this.name = 'RetryLaterError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A component the request needs is down (503); the message is logged, not sent. */
export class ServiceUnavailableError extends HttpError {
  constructor(message: string, options?: ErrorOptions) {
    super(503, message, options);
    this.name = 'ServiceUnavailableError';
  }
}

/** The API cannot start: a required setting is missing or a dependency cannot be opened. */
export class ApiSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApiSetupError';
  }
}
