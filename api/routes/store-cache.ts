/**
 * The binary cache routes over a live Nix store (cache/store-source.ts): the same URL layout as
 * api/routes/cache.ts, plus `<hash>.ls` listings. Every name in a URL is checked by the source
 * before the daemon hears of it; anything that is not a valid path of the store answers 404.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CONTENT_TYPES } from '../../cache/layout.ts';
import type { StoreCacheSource } from '../../cache/store-source.ts';

export interface StoreCacheRouteOptions {
  source: StoreCacheSource;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Quiet routes: Nix asks for thousands of narinfos; logging each would cost more than serving it. */
const QUIET = { logLevel: 'warn' as const };

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return reply.code(404).type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(`${what} is not in this store\n`);
}

/** Registers the store cache routes on `app`. */
export async function storeCacheRoutes(app: FastifyInstance, { source }: StoreCacheRouteOptions): Promise<void> {
  app.get('/nix-cache-info', QUIET, async (_request, reply) => reply.type(CONTENT_TYPES.cacheInfo).send(source.cacheInfo()));

  app.get<{ Params: { hash: string } }>('/:hash.narinfo', QUIET, async (request, reply) => {
    const body = await source.narInfo(request.params.hash);
    if (body === undefined) return notFound(reply, `${request.params.hash}.narinfo`);
    return reply.type(CONTENT_TYPES.narInfo).send(body);
  });

  app.get<{ Params: { hash: string } }>('/:hash.ls', QUIET, async (request, reply) => {
    const body = await source.listing(request.params.hash);
    if (body === undefined) return notFound(reply, `${request.params.hash}.ls`);
    return reply.type('application/json').send(body);
  });

  // HEAD is answered separately: the GET handler would start a NAR export only to discard it.
  app.head<{ Params: { file: string } }>('/nar/:file', QUIET, async (request, reply) => {
    const nar = await source.narHead(request.params.file);
    if (!nar) return notFound(reply, `nar/${request.params.file}`);
    if (nar.size !== undefined) reply.header('content-length', nar.size);
    return reply.type(CONTENT_TYPES.nar).header('cache-control', IMMUTABLE).send();
  });

  app.get<{ Params: { file: string } }>('/nar/:file', { ...QUIET, exposeHeadRoute: false }, async (request, reply) => {
    const nar = await source.nar(request.params.file);
    if (!nar) return notFound(reply, `nar/${request.params.file}`);
    if (nar.size !== undefined) reply.header('content-length', nar.size);
    // A client that hangs up mid-NAR must end the daemon export, not leave it waiting on backpressure.
    reply.raw.once('close', () => nar.body.destroy());
    return reply.type(CONTENT_TYPES.nar).header('cache-control', IMMUTABLE).send(nar.body);
  });

  app.get<{ Params: { drv: string } }>('/log/:drv', async (request, reply) => {
    const log = await source.log(request.params.drv);
    if (!log) return notFound(reply, `the log of ${request.params.drv}`);
    return reply.type(CONTENT_TYPES.log).send(log);
  });
}
