/**
 * The baseline of `npm run bench -- cache`: a plain static file server (node:http piping
 * fs.createReadStream, no framework), serving a directory as is. It reads large files in 1 MiB
 * chunks like our server, so the comparison measures the server, not a buffer size. Prints its port, then serves.
 *
 *   node --import tsx bench/cache/static-server.ts <root>
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

const root = process.argv[2];
if (!root) throw new Error('usage: static-server.ts <root>');

const server = createServer((request, response) => {
  const path = join(root, normalize(decodeURIComponent((request.url ?? '/').split('?')[0]!)));
  stat(path).then(
    (info) => {
      if (!info.isFile()) throw new Error('not a file');
      response.writeHead(200, { 'content-length': info.size, 'content-type': 'application/octet-stream' });
      createReadStream(path, { highWaterMark: Math.max(1, Math.min(info.size, 1 << 20)) }).pipe(response);
    },
    () => response.writeHead(404).end(),
  ).catch(() => response.writeHead(404).end());
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
