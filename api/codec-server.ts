/**
 * The remote codec endpoint of the Temporal Web UI (its "Codec Server" setting): `POST /decode`
 * and `POST /encode` with `{ payloads: [{ metadata: { name: base64 }, data: base64 }] }`, as the
 * UI and `temporal` CLI send them. With payloads encrypted (temporal/codec.ts), people read
 * histories in the UI only through this endpoint, so it runs apart from the public API, behind
 * whatever lets people into the Web UI, and answers cross-origin requests from that UI alone.
 */
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { installErrorHandlers } from './error-handler.ts';
import { ApiSetupError } from './errors.ts';

export interface CodecServer {
  app: FastifyInstance;
  port: number;
  close(): Promise<void>;
}

export interface StartCodecServerOptions {
  codec: PayloadCodec;
  host: string;
  port: number;
  /** The Web UI's origin (`https://temporal.example.org`): the only one whose browser requests are answered. */
  uiOrigin: string;
  log?: FastifyBaseLogger;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/** A base64 string, as the protocol carries bytes. */
const BASE64 = { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: 8 * 1024 * 1024 } as const;

const BODY_SCHEMA = {
  type: 'object',
  required: ['payloads'],
  additionalProperties: false,
  properties: {
    payloads: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: { metadata: { type: 'object', additionalProperties: BASE64, maxProperties: 64 }, data: BASE64 },
      },
    },
  },
} as const;

function fromJson(payload: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([name, value]) => [name, new Uint8Array(Buffer.from(value, 'base64'))])),
    data: new Uint8Array(Buffer.from(payload.data ?? '', 'base64')),
  };
}

function toJson(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([name, value]) => [name, Buffer.from(value ?? []).toString('base64')])),
    data: Buffer.from(payload.data ?? []).toString('base64'),
  };
}

/** Serves `/decode` and `/encode` for the Web UI at `uiOrigin`. */
export async function startCodecServer(options: StartCodecServerOptions): Promise<CodecServer> {
  const { codec, uiOrigin } = options;
  const app = options.log
    ? Fastify({ loggerInstance: options.log, bodyLimit: 64 * 1024 * 1024 })
    : Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
  const allow = (reply: FastifyReply): FastifyReply =>
    reply
      .header('access-control-allow-origin', uiOrigin)
      .header('access-control-allow-credentials', 'true')
      .header('access-control-allow-methods', 'POST, OPTIONS')
      .header('access-control-allow-headers', 'content-type, x-namespace, authorization')
      .header('vary', 'origin');
  try {
    installErrorHandlers(app);
    app.addHook('onRequest', async (request, reply) => {
      const origin = request.headers.origin;
      // A browser on another page must not use this endpoint to read histories.
      if (origin !== undefined && origin !== uiOrigin) return reply.code(403).send({ error: `origin ${origin} may not use this codec endpoint` });
      return undefined;
    });
    for (const [route, run] of [
      ['/decode', (payloads: Payload[]) => codec.decode(payloads)],
      ['/encode', (payloads: Payload[]) => codec.encode(payloads)],
    ] as const) {
      app.options(route, async (_request, reply) => allow(reply).code(204).send());
      app.post<{ Body: { payloads: JsonPayload[] } }>(route, { schema: { body: BODY_SCHEMA } }, async (request, reply) => {
        let payloads: Payload[];
        try {
          payloads = await run(request.body.payloads.map(fromJson));
        } catch (error) {
          return allow(reply).code(400).send({ error: (error as Error).message });
        }
        return allow(reply).send({ payloads: payloads.map(toJson) });
      });
    }
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ApiSetupError(`port ${options.port} on ${options.host} is already in use: choose another with --port`, { cause: error });
    }
    throw error;
  }
  return { app, port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}
