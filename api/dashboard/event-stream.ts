/**
 * Server-sent event streams fed by polling PostgreSQL. A stream polls about once a second and
 * writes only what changed (the poll function decides), sends `end` and closes once its subject
 * can no longer change, and gives up after a lifetime so that a forgotten tab does not poll
 * forever (the browser's EventSource reconnects with `Last-Event-ID` and picks up from there).
 *
 * Streams are bounded: a client (remote address) holds at most `perClient` (429 beyond), the app
 * at most `total` (503 beyond), each stream polling the database once a second. A client that
 * reads slower than updates come (the write buffer is full) gets nothing more until it drained;
 * then the stream starts over from nothing known, so it sends the latest state in full, and the
 * server never holds more than one write beyond the buffer for it.
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { RetryLaterError, TooManyRequestsError } from '../errors.ts';

export interface EventSink {
  /** Writes one event; `id` comes back as `Last-Event-ID` when the browser reconnects. */
  send(event: string, data: unknown, id?: string): void;
}

/** One poll: writes what changed; `end` when nothing will change any more. */
export type Poll = (sink: EventSink) => Promise<'continue' | 'end'>;

/** Starts polling from what the client has (its version, or undefined for nothing: send it all). */
export type OpenPoll = (known: string | undefined) => Poll;

export interface StreamOptions {
  intervalMs: number;
  /** After this long the stream closes without `end`; the browser reconnects. */
  lifetimeMs: number;
  /** A comment line after this much silence keeps proxies from timing the stream out. */
  keepAliveMs: number;
  /** Open streams per remote address: a few tabs of a few pages each. */
  perClient: number;
  /** Open streams in all: each polls PostgreSQL once a second through the API's pool. */
  total: number;
  /** A client whose write buffer stays full this long is disconnected (its EventSource reconnects). */
  stallMs: number;
}

export const DEFAULT_STREAM_OPTIONS: StreamOptions = {
  intervalMs: 1000,
  lifetimeMs: 30 * 60_000,
  keepAliveMs: 15_000,
  perClient: 16,
  total: 256,
  stallMs: 60_000,
};

/** How long a refused client is asked to wait, in seconds. */
const RETRY_AFTER_S = 30;

/** The open streams of an app, so that closing the app ends them instead of waiting for them. */
export class EventStreams {
  private readonly open = new Set<() => void>();
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly options: StreamOptions = DEFAULT_STREAM_OPTIONS,
  ) {}

  /** Ends every open stream. */
  closeAll(): void {
    for (const stop of [...this.open]) stop();
  }

  /**
   * Takes over the reply and polls until the subject ends, the client leaves or the app closes;
   * throws a 429 or 503 error instead when the client or the app has too many streams open.
   */
  start(request: FastifyRequest<{ Querystring: { v?: string } }>, reply: FastifyReply, openPoll: OpenPoll): void {
    const { intervalMs, lifetimeMs, keepAliveMs, stallMs } = this.options;
    const client = request.ip;
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.options.perClient) {
      throw new TooManyRequestsError(`${held} live updates are open from ${client}: close some dashboard tabs`, RETRY_AFTER_S);
    }
    if (this.open.size >= this.options.total) {
      throw new RetryLaterError(`the API serves ${this.open.size} live updates already, its limit: reload the page later`, RETRY_AFTER_S);
    }
    this.perClient.set(client, held + 1);
    let poll = openPoll(clientVersion(request));
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });

    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let lastWrite = Date.now();
    // Set while the write buffer is full: updates are dropped, and the stream resyncs on drain.
    let behindSince: number | undefined;
    const deadline = Date.now() + lifetimeMs;
    const write = (chunk: string): void => {
      if (!response.write(chunk)) behindSince = Date.now();
      lastWrite = Date.now();
    };
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      this.open.delete(stop);
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
      response.end();
    };
    this.open.add(stop);
    response.on('close', stop);
    response.on('drain', () => {
      if (behindSince === undefined) return;
      behindSince = undefined;
      poll = openPoll(undefined);
    });
    write('retry: 3000\n\n');

    const sink: EventSink = {
      send(event, data, id) {
        if (stopped || behindSince !== undefined) return;
        // JSON never holds a raw newline, so one `data:` line carries the whole payload.
        write(`${id ? `id: ${id.replace(/[\r\n]/g, '')}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
    };
    const tick = async (): Promise<void> => {
      if (behindSince !== undefined) {
        if (Date.now() - behindSince > stallMs) stop();
        else timer = setTimeout(() => void tick(), intervalMs);
        return;
      }
      try {
        const outcome = await poll(sink);
        if (stopped) return;
        // An end whose last updates were dropped waits for the resync, which ends again.
        if (outcome === 'end' && behindSince === undefined) {
          sink.send('end', {});
          stop();
          return;
        }
      } catch (error) {
        this.log.error({ err: error, url: request.url, reqId: request.id }, 'event stream failed');
        stop();
        return;
      }
      if (Date.now() > deadline) {
        stop();
        return;
      }
      if (behindSince === undefined && Date.now() - lastWrite > keepAliveMs) write(': keep-alive\n\n');
      timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
  }
}

/** The version a client already has: `Last-Event-ID` on a reconnect, else the `v` the page carried. */
function clientVersion(request: FastifyRequest<{ Querystring: { v?: string } }>): string | undefined {
  const header = request.headers['last-event-id'];
  const lastEventId = Array.isArray(header) ? header[0] : header;
  return lastEventId || request.query.v || undefined;
}
