/**
 * The one place forge HTTP requests are made: JSON in and out, errors classified as transient
 * (5xx, rate limits, network) or permanent, and the wait a rate-limited forge asks for.
 */
import { fetchText, HttpTimeoutError, REQUEST_TIMEOUT_MS } from '../lib/http.ts';
import { ForgeRequestError } from './errors.ts';

const USER_AGENT = 'harmonia-ci';
/** GitHub: a secondary rate limit without retry-after means "wait at least a minute". */
const RATE_LIMIT_DEFAULT_WAIT_MS = 60_000;
const MAX_PAGES = 100;

export interface ForgeHttp {
  /** API root without a trailing slash, e.g. `https://api.github.com` or `https://gitea.example/api/v1`. */
  baseUrl: string;
  /** The Authorization header value for a request. */
  authorization(): Promise<string | undefined>;
  headers?: Record<string, string>;
  /** Deadline for each whole request (default REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface ForgeResponse<T> {
  status: number;
  data: T;
  headers: Headers;
}

/** Sends one request; resolves for 2xx (data is undefined for an empty body), throws ForgeRequestError otherwise. */
export async function forgeRequest<T>(http: ForgeHttp, method: string, path: string, body?: unknown): Promise<ForgeResponse<T>> {
  const url = path.startsWith('http') ? path : `${http.baseUrl}${path}`;
  const authorization = await http.authorization();
  let response: Response;
  let text: string;
  try {
    ({ response, text } = await fetchText(
      url,
      {
        method,
        headers: {
          accept: 'application/json',
          'user-agent': USER_AGENT,
          ...http.headers,
          ...(authorization ? { authorization } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      },
      http.timeoutMs ?? REQUEST_TIMEOUT_MS,
    ));
  } catch (error) {
    // A timeout already names the request.
    const message = error instanceof HttpTimeoutError ? error.message : `${method} ${url}: ${(error as Error).message}`;
    throw new ForgeRequestError(message, undefined, true, undefined, { cause: error });
  }
  if (response.ok) return { status: response.status, data: (text === '' ? undefined : JSON.parse(text)) as T, headers: response.headers };
  throw requestError(method, url, response, text);
}

/** Every item of a paginated list, following `Link: <…>; rel="next"` (GitHub and Gitea both send it). */
export async function forgePaginate<T>(http: ForgeHttp, path: string, items: (data: unknown) => T[]): Promise<T[]> {
  const all: T[] = [];
  let next: string | undefined = path;
  for (let page = 0; next !== undefined && page < MAX_PAGES; page++) {
    const response: ForgeResponse<unknown> = await forgeRequest<unknown>(http, 'GET', next);
    all.push(...items(response.data));
    next = nextLink(response.headers.get('link'), http.baseUrl);
  }
  return all;
}

function nextLink(header: string | null, baseUrl: string): string | undefined {
  const match = header?.split(',').map((part) => /<([^>]+)>\s*;\s*rel="next"/.exec(part)).find((m) => m !== null);
  if (!match) return undefined;
  // Only follow links to the same API: a forged header must not send our token elsewhere.
  return new URL(match[1]!).origin === new URL(baseUrl).origin ? match[1] : undefined;
}

function requestError(method: string, url: string, response: Response, text: string): ForgeRequestError {
  const message = forgeMessage(text);
  const wait = rateLimitWait(response, message);
  const transient = response.status >= 500 || wait !== undefined;
  return new ForgeRequestError(`${method} ${url} answered ${response.status}${message ? `: ${message}` : ''}`, response.status, transient, wait);
}

/**
 * How long a rate-limited forge wants us to wait, or undefined when the answer is not a rate limit
 * (a 403 without rate-limit signs is a permission problem and retrying cannot help).
 */
export function rateLimitWait(response: Response, message: string, now = Date.now()): number | undefined {
  const retryAfter = response.headers.get('retry-after');
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  if (response.status !== 403 && response.status !== 429) return undefined;
  if (response.headers.get('x-ratelimit-remaining') === '0') {
    const reset = Number(response.headers.get('x-ratelimit-reset'));
    if (Number.isFinite(reset) && reset > 0) return Math.max(1000, reset * 1000 - now);
  }
  if (response.status === 429 || /rate limit/i.test(message)) return RATE_LIMIT_DEFAULT_WAIT_MS;
  return undefined;
}

function forgeMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return text.slice(0, 200);
}
