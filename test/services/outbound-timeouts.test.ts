/**
 * Every outbound client gives up on a server that accepts and then goes quiet, within its
 * (injected, short) limit, with a message naming the request and the limit: the binary cache
 * client (narinfo and NAR), the presigned PUT, the forge clients (GitHub API, GitHub App tokens,
 * Gitea) and the S3 backend. The servers are local, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { uploadToUrl } from '../../activities/builder/upload.ts';
import { S3Backend } from '../../cache/s3.ts';
import { SecretFile } from '../../config/secrets.ts';
import type { NarInfo } from '../../daemon/core/narinfo.ts';
import { openBinaryCache } from '../../daemon/executor/cache-client.ts';
import { createGiteaClient } from '../../forges/gitea.ts';
import { createGitHubClient } from '../../forges/github.ts';
import { HttpTimeoutError } from '../../lib/http.ts';

const SHORT = { requestMs: 300, idleMs: 300 };
// Generous against a loaded machine, far below the defaults (30 s, 60 s) a hang would otherwise take.
const BOUND_MS = 5000;
const STORE_PATH = '/nix/store/00000000000000000000000000000000-stalled';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** An HTTP server on 127.0.0.1 running `handler`; `close` also drops the connections it left hanging. */
async function httpServer(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A TCP server that accepts and never reads nor writes: a body sent to it stalls once the socket buffers fill. */
async function deafServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createTcpServer((socket) => {
    socket.pause();
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Runs `attempt`, expecting it to fail within BOUND_MS with an error matching `message`. */
async function givesUp(attempt: () => Promise<unknown>, message: RegExp): Promise<Error> {
  const started = Date.now();
  let failure: Error | undefined;
  try {
    await attempt();
  } catch (error) {
    failure = error as Error;
  }
  const elapsed = Date.now() - started;
  assert.ok(failure, 'the request should have failed');
  assert.match(failure.message, message);
  assert.ok(elapsed < BOUND_MS, `gave up after ${elapsed} ms`);
  return failure;
}

const silent: Handler = () => undefined;

describe('binary cache client', () => {
  it('gives up on a narinfo that never comes', async () => {
    const server = await httpServer(silent);
    try {
      const cache = openBinaryCache(server.url, SHORT);
      const error = await givesUp(() => cache.narInfo(STORE_PATH), /^GET http:\/\/127\.0\.0\.1:\d+\/00000000000000000000000000000000\.narinfo: no complete answer within 300 ms/);
      assert.ok(error instanceof HttpTimeoutError);
    } finally {
      await server.close();
    }
  });

  it('gives up on a NAR that stalls mid-body, after the inactivity limit, not a total one', async () => {
    const server = await httpServer((_request, response) => {
      response.writeHead(200, { 'content-length': '1000000' });
      // Slow but alive for longer than the limit, then silent.
      let sent = 0;
      const trickle = setInterval(() => {
        if (sent++ < 5) response.write(Buffer.alloc(100));
        else clearInterval(trickle);
      }, 150);
      response.on('close', () => clearInterval(trickle));
    });
    try {
      const cache = openBinaryCache(server.url, SHORT);
      let received = 0;
      const started = Date.now();
      await givesUp(async () => {
        for await (const chunk of cache.narFile({ storePath: STORE_PATH, url: 'nar/stalled.nar' } as NarInfo)) received += chunk.length;
      }, /^GET http:\/\/127\.0\.0\.1:\d+\/nar\/stalled\.nar: no data within 300 ms/);
      assert.equal(received, 500, 'every chunk that came was passed on');
      assert.ok(Date.now() - started > 700, 'a body that keeps moving is not cut off by the limit');
    } finally {
      await server.close();
    }
  });
});

describe('presigned PUT', () => {
  const target = (url: string) => ({ kind: 'put' as const, url: `${url}/nar/x.nar.zst?X-Amz-Signature=secret`, headers: {}, expiresAt: Date.now() + 60_000 });

  it('gives up when the storage takes the body and never answers, without showing the signature', async () => {
    const server = await httpServer((request) => request.resume());
    try {
      const error = await givesUp(
        () => uploadToUrl('nar/x.nar.zst', Buffer.from('nar bytes'), target(server.url), SHORT),
        /^PUT http:\/\/127\.0\.0\.1:\d+\/nar\/x\.nar\.zst: no .*within 300 ms/,
      );
      assert.doesNotMatch(error.message, /secret/);
    } finally {
      await server.close();
    }
  });

  it('gives up when the storage stops reading the body', async () => {
    const server = await deafServer();
    const dir = await mkdtemp(join(tmpdir(), 'harmonia-ci-put-'));
    try {
      // Larger than the socket buffers and the read-ahead together, so the upload really stalls.
      const file = join(dir, 'x.nar.zst');
      await writeFile(file, Buffer.alloc(64 << 20));
      await givesUp(() => uploadToUrl('nar/x.nar.zst', file, target(server.url), SHORT), /^PUT http:\/\/127\.0\.0\.1:\d+\/nar\/x\.nar\.zst: the server took no more of the body within 300 ms/);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('forge clients', () => {
  let dir: string;
  let server: { url: string; close(): Promise<void> };
  const repo = { owner: 'o', name: 'r' };
  const status = { state: 'success' as const, context: 'ci', description: 'ok', targetUrl: 'http://ci.example/1' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'harmonia-ci-forge-timeouts-'));
    await writeFile(join(dir, 'token'), 'a-token\n');
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(dir, 'app.pem'), keys.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    server = await httpServer(silent);
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GitHub API calls give up, transient, naming the request', async () => {
    const github = createGitHubClient({ apiUrl: server.url, tokenFile: new SecretFile('forges.github.token-file', join(dir, 'token')), timeoutMs: 300 });
    const error = await givesUp(() => github.setStatus(repo, 'abc', status), /^POST http:\/\/127\.0\.0\.1:\d+\/repos\/o\/r\/statuses\/abc: no complete answer within 300 ms/);
    assert.equal((error as { transient?: boolean }).transient, true, 'retried later, like any outage');
  });

  it('GitHub App token requests give up', async () => {
    const github = createGitHubClient({
      apiUrl: server.url,
      appId: 1,
      privateKeyFile: new SecretFile('forges.github.private-key-file', join(dir, 'app.pem')),
      timeoutMs: 300,
    });
    const error = await givesUp(
      () => github.setStatus({ ...repo, installationId: 7 }, 'abc', status),
      /^GitHub App token: POST http:\/\/127\.0\.0\.1:\d+\/app\/installations\/7\/access_tokens: no complete answer within 300 ms/,
    );
    assert.equal((error as { transient?: boolean }).transient, true);
  });

  it('Gitea API calls give up', async () => {
    const gitea = createGiteaClient({ url: server.url, tokenFile: new SecretFile('forges.gitea.token-file', join(dir, 'token')), timeoutMs: 300 });
    await givesUp(() => gitea.setStatus(repo, 'abc', status), /^POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/repos\/o\/r\/statuses\/abc: no complete answer within 300 ms/);
  });
});

describe('S3 backend', () => {
  it('gives up on a storage that accepts and never answers, naming the endpoint and the limit', async () => {
    const server = await httpServer(silent);
    const backend = new S3Backend({
      bucket: 'cache',
      endpoint: server.url,
      forcePathStyle: true,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
      timeouts: { connectMs: 300, idleMs: 300 },
    });
    try {
      // The SDK retries (3 attempts with backoff), each bounded by the limit.
      await givesUp(() => backend.head('nix-cache-info'), new RegExp(`HEAD nix-cache-info in s3://cache at ${server.url} failed \\(TimeoutError: .*timed out after 300 ms of inactivity`));
    } finally {
      await backend.close();
      await server.close();
    }
  });
});
