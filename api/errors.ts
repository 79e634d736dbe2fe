/**
 * Typed HTTP errors. Route code throws these; the app's error handler turns them
 * into `{ error, requestId }` replies. Messages of 4xx errors reach the client and
 * should tell it what to change; 5xx messages are logged and never sent.
 */
export class HttpError extends Error {
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
