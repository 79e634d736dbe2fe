/**
 * Server-sent event streams fed by polling PostgreSQL. A stream polls about once a second and
 * writes only what changed (the poll function decides), sends `end` and closes once its subject
 * can no longer change, and gives up after a lifetime so that a forgotten tab does not poll
 * forever (the browser's EventSource reconnects with `Last-Event-ID` and picks up from there).
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';

export interface EventSink {
  /** Writes one event; `id` comes back as `Last-Event-ID` when the browser reconnects. */
  send(event: string, data: unknown, id?: string): void;
}

/** One poll: writes what changed; `end` when nothing will change any more. */
export type Poll = (sink: EventSink) => Promise<'continue' | 'end'>;

export interface StreamOptions {
  intervalMs: number;
  /** After this long the stream closes without `end`; the browser reconnects. */
  lifetimeMs: number;
  /** A comment line after this much silence keeps proxies from timing the stream out. */
  keepAliveMs: number;
}

export const DEFAULT_STREAM_OPTIONS: StreamOptions = { intervalMs: 1000, lifetimeMs: 30 * 60_000, keepAliveMs: 15_000 };

/** The open streams of an app, so that closing the app ends them instead of waiting for them. */
export class EventStreams {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly options: StreamOptions = DEFAULT_STREAM_OPTIONS,
  ) {}

  /** Ends every open stream. */
  closeAll(): void {
    for (const stop of [...this.open]) stop();
  }

  /** Takes over the reply and runs `poll` until it ends, the client leaves or the app closes. */
  start(request: FastifyRequest, reply: FastifyReply, poll: Poll): void {
    const { intervalMs, lifetimeMs, keepAliveMs } = this.options;
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
    response.write('retry: 3000\n\n');

    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let lastWrite = Date.now();
    const deadline = Date.now() + lifetimeMs;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      this.open.delete(stop);
      response.end();
    };
    this.open.add(stop);
    response.on('close', stop);

    const sink: EventSink = {
      send(event, data, id) {
        if (stopped) return;
        // JSON never holds a raw newline, so one `data:` line carries the whole payload.
        response.write(`${id ? `id: ${id.replace(/[\r\n]/g, '')}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        lastWrite = Date.now();
      },
    };
    const tick = async (): Promise<void> => {
      try {
        const outcome = await poll(sink);
        if (stopped) return;
        if (outcome === 'end') {
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
      if (Date.now() - lastWrite > keepAliveMs) {
        response.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
  }
}

/** The version a client already has: `Last-Event-ID` on a reconnect, else the `v` the page carried. */
export function clientVersion(request: FastifyRequest<{ Querystring: { v?: string } }>): string | undefined {
  const header = request.headers['last-event-id'];
  const lastEventId = Array.isArray(header) ? header[0] : header;
  return lastEventId || request.query.v || undefined;
}
