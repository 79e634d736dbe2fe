/**
 * Build products for download: `GET /api/builds/<drv hash>/products/<store path without
 * /nix/store/>`, a file declared in `nix-support/hydra-build-products` (or inside a declared
 * directory), read out of its output's NAR in the binary cache and streamed, with one `bytes=`
 * Range. Only files inside a recorded product are served, never symbolic links, and always as an
 * attachment: a product is the build's content, not a page of this site.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { readText } from '../../cache/backend-reader.ts';
import type { CacheBackend } from '../../cache/types.ts';
import { parseNarInfo } from '../../daemon/core/narinfo.ts';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { parseNar, type NarEvent } from '../../daemon/nar/index.ts';
import { resolveBuildKey } from '../../queries/build-page.ts';
import { isProductPath } from '../../queries/products.ts';
import { BadRequestError, NotFoundError } from '../errors.ts';
import { parseRange } from './cache.ts';

const STORE_DIR = '/nix/store';
const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;

/** Registers the product downloads; they read from `backend`. */
export async function productRoutes(app: FastifyInstance, { backend }: { backend: CacheBackend }): Promise<void> {
  app.get<{ Params: { build: string; '*': string } }>('/api/builds/:build/products/*', { exposeHeadRoute: false }, async (request, reply) => {
    const components = request.params['*'].split('/');
    // Fastify has decoded the URL once: each component is a name as it is in the store.
    if (components.some((c) => c === '' || c === '.' || c === '..' || c.includes('\0'))) {
      throw new BadRequestError('a product path is a store path without /nix/store/, with no empty, "." or ".." component');
    }
    const [storeName = '', ...inside] = components;
    if (!HASH_PART.test(storeName.slice(0, 32)) || storeName[32] !== '-') throw new BadRequestError(`'${storeName}' is not a store path name`);
    const drvPath = HASH_PART.test(request.params.build) ? await resolveBuildKey(app.db, request.params.build) : undefined;
    const path = [STORE_DIR, ...components].join('/');
    if (!drvPath || !(await app.access.derivationVisible(request, drvPath)) || !(await isProductPath(app.db, drvPath, path))) {
      throw new NotFoundError(`${path} is no build product of build ${request.params.build}`);
    }
    return sendFromNar(backend, reply, storeName, inside, request.headers.range);
  });
}

/** What a narinfo's `Compression:` adds to a NAR's file name, and its media type. */
const COMPRESSIONS: Record<string, { ext: string; type: string }> = {
  none: { ext: '', type: 'application/x-nix-nar' },
  zstd: { ext: '.zst', type: 'application/zstd' },
  xz: { ext: '.xz', type: 'application/x-xz' },
  bzip2: { ext: '.bz2', type: 'application/x-bzip2' },
  br: { ext: '.br', type: 'application/x-brotli' },
};

/**
 * `GET /api/builds/<build>/outputs/<output name>.nar`: the output's NAR as the cache stores it, named
 * `<store path name>.nar[.zst|.xz|…]` after its compression, for `nix-store --restore` after decompressing.
 */
export async function outputNarRoutes(app: FastifyInstance, { backend }: { backend: CacheBackend }): Promise<void> {
  app.get<{ Params: { build: string; file: string } }>('/api/builds/:build/outputs/:file', { exposeHeadRoute: false }, async (request, reply) => {
    const { build, file } = request.params;
    if (!file.endsWith('.nar') || file.length === '.nar'.length) throw new BadRequestError(`'${file}': expected <output name>.nar, such as out.nar`);
    const output = file.slice(0, -'.nar'.length);
    const drvPath = await resolveBuildKey(app.db, build);
    if (!drvPath || !(await app.access.derivationVisible(request, drvPath))) throw new NotFoundError(`no build ${build}`);
    const { rows } = await app.db.query<{ out_path: string | null }>('SELECT out_path FROM derivation_outputs WHERE drv_path = $1 AND output_name = $2', [drvPath, output]);
    const outPath = rows[0]?.out_path;
    if (!outPath) throw new NotFoundError(`build ${build} has no output ${output} with a known store path`);
    const storeName = outPath.slice(outPath.lastIndexOf('/') + 1);
    const text = await readText(backend, `${storeName.slice(0, 32)}.narinfo`).catch(() => undefined);
    if (text === undefined) throw new NotFoundError(`${outPath} is not in the binary cache (not built yet, or its upload failed)`);
    const info = parseNarInfo(text);
    const kind = COMPRESSIONS[info.compression];
    const object = kind ? await backend.get(info.url) : undefined;
    if (!kind || !object) throw new NotFoundError(`${outPath} is not in the binary cache (${info.url} is missing or uses an unknown compression ${info.compression})`);
    return reply
      .type(kind.type)
      .header('content-length', object.object.size)
      .header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(`${storeName}.nar${kind.ext}`)}`)
      .header('x-nar-compression', info.compression)
      .header('x-content-type-options', 'nosniff')
      .send(object.body);
  });
}

/** Finds the regular file `inside` the output `storeName` in its cached NAR and streams it. */
async function sendFromNar(backend: CacheBackend, reply: FastifyReply, storeName: string, inside: string[], rangeHeader: string | undefined): Promise<FastifyReply> {
  const missing = (): never => {
    throw new NotFoundError(`${STORE_DIR}/${[storeName, ...inside].join('/')} is not in the binary cache`);
  };
  const text = await readText(backend, `${storeName.slice(0, 32)}.narinfo`).catch(() => undefined);
  if (text === undefined) return missing();
  const info = parseNarInfo(text);
  if (info.compression !== 'zstd' && info.compression !== 'none') {
    throw new NotFoundError(`${info.url} is compressed with ${info.compression}, which product downloads do not read`);
  }
  const object = await backend.get(info.url);
  if (!object) return missing();
  const nar: AsyncIterable<Uint8Array> = info.compression === 'zstd' ? zstdDecompress(object.body) : object.body;
  const events = parseNar(nar)[Symbol.asyncIterator]();
  const wanted = inside.join('/');
  let file: Extract<NarEvent, { type: 'regular' }> | undefined;
  for (;;) {
    const next = await events.next();
    if (next.done) break;
    const event = next.value;
    if (event.type === 'contents') continue;
    if (event.path.map((b) => b.toString('utf8')).join('/') !== wanted) continue;
    if (event.type === 'regular') file = event;
    break;
  }
  if (!file) {
    await events.return?.(undefined);
    object.body.destroy();
    throw new NotFoundError(`${STORE_DIR}/${[storeName, ...inside].join('/')} is not a regular file of its output`);
  }
  const size = file.size;
  const range = parseRange(rangeHeader);
  let start = 0;
  let end = size - 1;
  if (range) {
    if ('suffix' in range) start = Math.max(0, size - range.suffix);
    else {
      start = range.start;
      end = Math.min(range.end ?? size - 1, size - 1);
    }
    if (start >= size) {
      await events.return?.(undefined);
      object.body.destroy();
      return reply.code(416).header('content-range', `bytes */${size}`).send();
    }
    reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  }
  const name = inside.at(-1) ?? storeName;
  reply
    .type('application/octet-stream')
    .header('accept-ranges', 'bytes')
    .header('content-length', Math.max(0, end - start + 1))
    .header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(name)}`)
    .header('x-content-type-options', 'nosniff');
  return reply.send(Readable.from(slice(events, start, end, () => object.body.destroy())));
}

/** The bytes `start`..`end` of the file whose `contents` events come next; stops reading the NAR after them. */
async function* slice(events: AsyncIterator<NarEvent>, start: number, end: number, close: () => void): AsyncGenerator<Buffer> {
  let offset = 0;
  try {
    while (offset <= end) {
      const next = await events.next();
      if (next.done || next.value.type !== 'contents') break;
      const chunk = next.value.chunk;
      const from = Math.max(0, start - offset);
      const to = Math.min(chunk.length, end - offset + 1);
      // Chunks are views valid until the next event: copy what is sent.
      if (from < to) yield Buffer.from(chunk.subarray(from, to));
      offset += chunk.length;
    }
  } finally {
    await events.return?.(undefined);
    close();
  }
}
