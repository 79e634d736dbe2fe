/**
 * The limits of the dashboard's event streams (api/dashboard/event-stream.ts), on stand-in
 * requests whose responses can be made to push back: streams per client and in total, and a
 * client that reads slowly getting no updates until it drained, then the latest state in full.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { afterEach, describe, it } from 'node:test';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { installErrorHandlers } from '../../api/error-handler.ts';
import type { HttpError } from '../../api/errors.ts';
import { DEFAULT_STREAM_OPTIONS, EventStreams, type OpenPoll } from '../../api/dashboard/event-stream.ts';
import { createLogger } from '../../lib/log.ts';

/** A response whose write returns false while `full` is set, like a socket whose buffer is full. */
class FakeResponse extends EventEmitter {
  full = false;
  ended = false;
  readonly chunks: string[] = [];
  writeHead(): this {
    return this;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return !this.full;
  }
  end(): void {
    this.ended = true;
  }
  /** The `data:` payloads of the events written so far, in order. */
  events(): unknown[] {
    return this.chunks.flatMap((c) => [...c.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as unknown));
  }
  /** The buffer emptied: what a socket says once the client read it. */
  drain(): void {
    this.full = false;
    this.emit('drain');
  }
}

function fakeRequest(ip: string, v?: string): FastifyRequest<{ Querystring: { v?: string } }> {
  return { ip, id: 'req', url: '/ci/evals/1/events', headers: {}, query: v === undefined ? {} : { v } } as unknown as FastifyRequest<{
    Querystring: { v?: string };
  }>;
}

function fakeReply(): { reply: FastifyReply; response: FakeResponse } {
  const response = new FakeResponse();
  return { reply: { hijack() {}, raw: response } as unknown as FastifyReply, response };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quietPoll: OpenPoll = () => async () => 'continue';

describe('dashboard event streams', () => {
  let streams: EventStreams | undefined;
  afterEach(() => streams?.closeAll());

  it('refuses a client beyond its streams with 429, and anyone beyond the total with 503', () => {
    streams = new EventStreams(createLogger({ level: 'silent' }), { ...DEFAULT_STREAM_OPTIONS, intervalMs: 50, perClient: 2, total: 3 });
    const open = (ip: string) => {
      const { reply, response } = fakeReply();
      streams!.start(fakeRequest(ip), reply, quietPoll);
      return response;
    };
    const first = open('10.0.0.1');
    open('10.0.0.1');
    assert.throws(() => open('10.0.0.1'), (error: HttpError) => error.statusCode === 429 && error.retryAfterSeconds === 30 && /close some dashboard tabs/.test(error.message));
    open('10.0.0.2');
    assert.throws(() => open('10.0.0.3'), (error: HttpError) => error.statusCode === 503 && error.retryAfterSeconds !== undefined);

    // A stream that ends gives its place back, to its client and to the total.
    first.emit('close');
    assert.equal(first.ended, true);
    open('10.0.0.1');
    assert.throws(() => open('10.0.0.1'), (error: HttpError) => error.statusCode === 429);
  });

  it('drops updates while the client is behind and sends the latest state in full once it drained', async () => {
    streams = new EventStreams(createLogger({ level: 'silent' }), { ...DEFAULT_STREAM_OPTIONS, intervalMs: 20 });
    // The subject: a counter that changes on every poll. A poll sends it when it changed since
    // what the client has; `opened` records what each poll started from.
    let state = 0;
    const opened: Array<string | undefined> = [];
    const openPoll: OpenPoll = (known) => {
      opened.push(known);
      let seen = known === undefined ? -1 : Number(known);
      return async (sink) => {
        state += 1;
        if (state !== seen) sink.send('state', { state }, String(state));
        seen = state;
        return 'continue';
      };
    };
    const { reply, response } = fakeReply();
    streams.start(fakeRequest('10.0.0.1', '0'), reply, openPoll);
    await wait(100);
    assert.ok(response.events().length >= 2, 'updates flow while the client keeps up');

    response.full = true;
    await wait(60);
    const whileBehind = response.events().length;
    const polledBefore = state;
    await wait(150);
    assert.equal(response.events().length, whileBehind, 'nothing is written while the buffer is full');
    assert.equal(state, polledBefore, 'the database is not polled for a client that cannot take updates');

    response.drain();
    await wait(60);
    assert.deepEqual(opened, ['0', undefined], 'after the drain the stream starts over from nothing known');
    const resynced = response.events().slice(whileBehind);
    assert.ok(resynced.length >= 1);
    assert.deepEqual(resynced[0], { state: polledBefore + 1 }, 'the first event after the drain is the latest state');
    assert.equal(response.ended, false);
  });

  it('disconnects a client that stays behind past the stall limit', async () => {
    streams = new EventStreams(createLogger({ level: 'silent' }), { ...DEFAULT_STREAM_OPTIONS, intervalMs: 10, stallMs: 50 });
    const { reply, response } = fakeReply();
    streams.start(fakeRequest('10.0.0.1'), reply, () => async (sink) => {
      sink.send('state', { big: 'x'.repeat(100) });
      return 'continue';
    });
    response.full = true;
    await wait(200);
    assert.equal(response.ended, true);
  });

  it('answers a refused stream 429 with Retry-After through the app\'s error handler', async () => {
    const app = Fastify();
    installErrorHandlers(app);
    streams = new EventStreams(createLogger({ level: 'silent' }), { ...DEFAULT_STREAM_OPTIONS, perClient: 0 });
    app.get<{ Querystring: { v?: string } }>('/events', async (request, reply) => streams!.start(request, reply, quietPoll));
    try {
      const response = await app.inject({ method: 'GET', url: '/events' });
      assert.equal(response.statusCode, 429);
      assert.equal(response.headers['retry-after'], '30');
      assert.match(response.json<{ error: string }>().error, /live updates are open from 127\.0\.0\.1/);
    } finally {
      await app.close();
    }
  });
});
