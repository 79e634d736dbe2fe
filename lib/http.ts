/**
 * Outbound HTTP with limits of its own: fetch has none (undici waits 300 s for headers and again
 * for each pause of a body), so a server that accepts and never answers would hold a build, an
 * upload or a status update for minutes. A small request gets one deadline for the whole
 * exchange; a streaming body (a NAR can be gigabytes) gets an inactivity limit instead, re-armed
 * by every chunk. A timeout error names the request and the limit.
 */

/** How long establishing a connection may take (where the client lets us set it apart). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** A whole small request (a narinfo, a forge API call, a token), body included. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** The longest pause within a streaming body, either way, before the transfer is abandoned. */
export const IDLE_TIMEOUT_MS = 60_000;

/** The limits one client applies; tests inject short ones. */
export interface HttpTimeouts {
  /** Deadline for a whole small request, or for the answer to begin on a streaming one. */
  requestMs: number;
  /** The longest pause between chunks of a streaming body. */
  idleMs: number;
}

/** REQUEST_TIMEOUT_MS and IDLE_TIMEOUT_MS. */
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { requestMs: REQUEST_TIMEOUT_MS, idleMs: IDLE_TIMEOUT_MS };

/** A request abandoned because the other side went quiet. */
export class HttpTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpTimeoutError';
  }
}

/** `METHOD origin/path` without the query: presigned URLs carry credentials there. */
export function describeRequest(method: string, url: string): string {
  try {
    const parsed = new URL(url);
    return `${method} ${parsed.origin}${parsed.pathname}`;
  } catch {
    return `${method} ${url}`;
  }
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

/** A timer that aborts its signal with an HttpTimeoutError unless re-armed or disarmed in time. */
export class Watchdog {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly request: string) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Aborts after `ms` unless called again or disarmed; `waitingFor` completes "no … within". */
  arm(ms: number, waitingFor: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.controller.abort(new HttpTimeoutError(`${this.request}: ${waitingFor} within ${seconds(ms)}; the server is down, overloaded or unreachable`));
    }, ms);
  }

  disarm(): void {
    clearTimeout(this.timer);
  }

  /** The timeout if this watchdog fired (fetch then fails with an AbortError or the reason), else `error` itself. */
  explain(error: unknown): unknown {
    return this.controller.signal.aborted ? this.controller.signal.reason : error;
  }
}

/** fetch and read the whole answer as text within one deadline: for small requests. */
export async function fetchText(url: string, init: RequestInit = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ response: Response; text: string }> {
  const watchdog = new Watchdog(describeRequest(init.method ?? 'GET', url));
  watchdog.arm(timeoutMs, 'no complete answer');
  try {
    const response = await fetch(url, { ...init, signal: watchdog.signal });
    return { response, text: await response.text() };
  } catch (error) {
    throw watchdog.explain(error);
  } finally {
    watchdog.disarm();
  }
}

/** A fetch for clients that take one (@octokit): the answer is read within the deadline and handed over whole. */
export function fetchWithDeadline(timeoutMs = REQUEST_TIMEOUT_MS): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const { response, text } = await fetchText(url, { ...init, method: init?.method ?? (input instanceof Request ? input.method : 'GET') }, timeoutMs);
    const empty = response.status === 204 || response.status === 304;
    return new Response(empty ? null : text, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/**
 * A GET whose answer must begin within `timeouts.requestMs` and whose body may then pause at most
 * `timeouts.idleMs` between chunks, however long it is in all.
 */
export async function fetchStream(url: string, timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS): Promise<{ response: Response; body: AsyncIterable<Uint8Array> }> {
  const watchdog = new Watchdog(describeRequest('GET', url));
  watchdog.arm(timeouts.requestMs, 'no answer');
  let response: Response;
  try {
    response = await fetch(url, { signal: watchdog.signal });
  } catch (error) {
    throw watchdog.explain(error);
  } finally {
    // Re-armed by each read of the body, which the caller may never start (an error status).
    watchdog.disarm();
  }
  return { response, body: watchedBody(response, watchdog, timeouts.idleMs) };
}

async function* watchedBody(response: Response, watchdog: Watchdog, idleMs: number): AsyncGenerator<Uint8Array> {
  if (!response.body) return;
  const reader = response.body.getReader();
  try {
    for (;;) {
      watchdog.arm(idleMs, 'no data');
      const { done, value } = await reader.read();
      // Time the reader spends on a chunk (a slow nix-daemon import) is not the server's silence.
      watchdog.disarm();
      if (done) return;
      yield value;
    }
  } catch (error) {
    throw watchdog.explain(error);
  } finally {
    watchdog.disarm();
    // An early return (the reader stopped) or a failure: release the connection.
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * Passes a request body through while `watchdog` sees progress: each chunk taken re-arms it, so
 * a body the server stops reading is abandoned after `idleMs`; once it is all sent, the answer
 * must come within `requestMs`.
 */
export async function* watchedUpload(source: AsyncIterable<Uint8Array>, watchdog: Watchdog, timeouts: HttpTimeouts): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    watchdog.arm(timeouts.idleMs, 'the server took no more of the body');
    yield chunk;
  }
  watchdog.arm(timeouts.requestMs, 'no answer after the whole body was sent');
}
