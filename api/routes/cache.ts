/**
 * The binary cache over HTTP, as Nix's http binary cache store reads it: `/nix-cache-info`,
 * `/<hash>.narinfo` (GET and HEAD), `/<hash>.ls`, `/nar/…` streamed with Range requests, `/log/<drv>` (stored
 * zstd; decompressed for clients that do not accept zstd). Bodies are streamed from the storage,
 * so memory stays bounded whatever the object size. Static routes of the app (`/healthz`, `/ci/`,
 * `/api/…`, `/webhook/…`) win over these parametric ones.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { readText } from '../../cache/backend-reader.ts';
import { CACHE_INFO_KEY, cacheInfoText, classifyKey, CONTENT_TYPES } from '../../cache/layout.ts';
import type { CacheBackend, ObjectStream } from '../../cache/types.ts';
import type { CacheMetrics } from '../plugins/metrics.ts';

/** Who may download what: the API's cache hides what only private projects built (api/auth/cache-guard.ts). */
export interface CacheGuard {
  /** A narinfo or listing of the store path with this hash part. */
  storePath(request: FastifyRequest, hashPart: string): Promise<boolean>;
  /** A NAR, by the file name's NAR hash. */
  nar(request: FastifyRequest, narHash: string): Promise<boolean>;
  /** The log of a derivation, by its hash part. */
  log(request: FastifyRequest, hashPart: string): Promise<boolean>;
}

export interface CacheRouteOptions {
  backend: CacheBackend;
  guard?: CacheGuard | undefined;
  /** Counts narinfo and NAR lookups and the bytes served. */
  metrics?: CacheMetrics | undefined;
}

const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;
/** NARs are named by their hash: a URL's bytes never change. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Quiet routes: Nix asks for thousands of narinfos; logging each would cost more than serving it. */
const QUIET = { logLevel: 'warn' as const };

type RangeRequest = { start: number; end?: number } | { suffix: number };

/** One `bytes=` range; several ranges or an unparsable header mean the whole object (RFC 9110 allows it). */
export function parseRange(header: string | undefined): RangeRequest | undefined {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') return { suffix: Number(match[2]) };
  const start = Number(match[1]);
  if (match[2] === '') return { start };
  const end = Number(match[2]);
  return end < start ? undefined : { start, end };
}

/** True when the client takes `Content-Encoding: zstd` (listed with a non-zero q). */
function acceptsZstd(header: string | undefined): boolean {
  return (header ?? '').split(',').some((item) => {
    const [coding, ...params] = item.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return coding === 'zstd' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return reply.code(404).type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(`${what} is not in this cache\n`);
}

/** Registers the cache routes on `app`. */
export async function cacheRoutes(app: FastifyInstance, { backend, metrics, guard }: CacheRouteOptions): Promise<void> {
  // Read once: the signer writes it when it sets the cache up, and nothing changes it afterwards.
  const cacheInfo = (await readText(backend, CACHE_INFO_KEY).catch(() => undefined)) ?? cacheInfoText();
  // This plugin's own scope: only the cache routes' failures are counted.
  if (metrics) app.addHook('onError', async () => metrics.error());

  // Hidden is answered as missing: a 404, never a 403 that would tell the path exists.
  const narAllowed = async (request: FastifyRequest, file: string): Promise<boolean> => !guard || guard.nar(request, file.slice(0, file.indexOf('.')));

  app.get('/nix-cache-info', QUIET, async (_request, reply) => reply.type(CONTENT_TYPES.cacheInfo).send(cacheInfo));

  // GET and HEAD: Fastify answers HEAD from the GET handler without a body.
  app.get<{ Params: { hash: string } }>('/:hash.narinfo', QUIET, async (request, reply) => {
    const { hash } = request.params;
    const allowed = HASH_PART.test(hash) && (!guard || (await guard.storePath(request, hash)));
    const body = allowed ? await backend.read(`${hash}.narinfo`) : undefined;
    metrics?.request('narinfo', body === undefined ? undefined : Buffer.byteLength(body));
    if (body === undefined) return notFound(reply, `${hash}.narinfo`);
    return reply.type(CONTENT_TYPES.narInfo).send(body);
  });

  app.get<{ Params: { hash: string } }>('/:hash.ls', QUIET, async (request, reply) => {
    const { hash } = request.params;
    const body = HASH_PART.test(hash) && (!guard || (await guard.storePath(request, hash))) ? await backend.read(`${hash}.ls`) : undefined;
    if (body === undefined) return notFound(reply, `${hash}.ls`);
    return reply.type(CONTENT_TYPES.listing).send(body);
  });

  app.head<{ Params: { file: string } }>('/nar/:file', QUIET, async (request, reply) => {
    const key = `nar/${request.params.file}`;
    const object = classifyKey(key) === 'nar' && (await narAllowed(request, request.params.file)) ? await backend.head(key) : undefined;
    if (!object) return notFound(reply, key);
    return reply.type(CONTENT_TYPES.nar).header('accept-ranges', 'bytes').header('content-length', object.size).header('cache-control', IMMUTABLE).send();
  });

  app.get<{ Params: { file: string } }>('/nar/:file', { ...QUIET, exposeHeadRoute: false }, async (request, reply) => {
    const key = `nar/${request.params.file}`;
    if (classifyKey(key) !== 'nar' || !(await narAllowed(request, request.params.file))) return notFound(reply, key);
    const range = parseRange(request.headers.range);
    let stream: ObjectStream | undefined;
    if (range && 'suffix' in range) {
      const object = await backend.head(key);
      stream = object && (await backend.get(key, { start: Math.max(0, object.size - range.suffix) }));
    } else {
      stream = await backend.get(key, range);
    }
    metrics?.request('nar', stream && Math.max(0, stream.end - stream.start + 1));
    if (!stream) return notFound(reply, key);
    const { object, start, end, body } = stream;
    reply.type(CONTENT_TYPES.nar).header('accept-ranges', 'bytes').header('cache-control', IMMUTABLE);
    if (range && start >= object.size && object.size > 0) {
      body.destroy();
      return reply.code(416).header('content-range', `bytes */${object.size}`).send();
    }
    reply.header('content-length', end - start + 1);
    if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${object.size}`);
    return reply.send(body);
  });

  app.get<{ Params: { drv: string } }>('/log/:drv', async (request, reply) => {
    const key = `log/${request.params.drv}`;
    const allowed = classifyKey(key) === 'log' && (!guard || (await guard.log(request, request.params.drv.slice(0, 32))));
    const stream = allowed ? await backend.get(key) : undefined;
    if (!stream) return notFound(reply, `the log of ${request.params.drv}`);
    reply.type(CONTENT_TYPES.log).header('vary', 'accept-encoding');
    if (acceptsZstd(request.headers['accept-encoding'])) {
      return reply.header('content-encoding', 'zstd').header('content-length', stream.object.size).send(stream.body);
    }
    return reply.send(Readable.from(zstdDecompress(stream.body)));
  });
}
