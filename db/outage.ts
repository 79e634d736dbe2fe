/**
 * Telling "PostgreSQL is unreachable" apart from a failed statement: the webhook route answers
 * 503 for the first (the forge can redeliver later) and the delivery dispatcher waits it out
 * instead of counting it against a delivery.
 */

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

// Connection exceptions (class 08), the server shutting down or starting up, no free connection slot.
const SERVER_CODES = /^(08|57P0[123]$|53300$)/;

// What pg and pg-pool throw when a connection breaks or cannot be had in time; they carry no code.
const CLIENT_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection closed/i;

/** True when `error` says the database could not be reached, rather than that a statement failed. */
export function isDatabaseUnreachable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnreachable);
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_CODES.test(code))) return true;
  return CLIENT_MESSAGES.test(error.message);
}

/** The reason in a few words, for messages: `ECONNREFUSED 127.0.0.1:5432`, or the error's message. */
export function unreachableReason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return [...new Set(error.errors.map(unreachableReason))].join('; ');
  if (!(error instanceof Error)) return String(error);
  return error.message || String((error as { code?: unknown }).code ?? error.name);
}
