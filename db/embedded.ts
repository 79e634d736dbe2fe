/**
 * The embedded PostgreSQL for a single machine with nothing configured: PGlite
 * (PostgreSQL compiled to WebAssembly) persisted under the state directory and
 * served on a loopback TCP port, so `pg` talks to it like to any server.
 *
 * PGlite runs in a worker thread of its own (db/embedded-thread.mjs): its WebAssembly and its
 * synchronous file I/O then use another core instead of blocking this process's event loop.
 *
 * PGlite is ONE session underneath. The socket server serialises whole
 * transactions between connections, but session state is shared: an advisory
 * lock taken on one connection is "held" by all of them, and SET leaks across
 * (test/db/embedded.test.ts shows both). So the server accepts a single
 * connection, and `createPool` gives any pool to it `poolSize` (1) connections.
 */
import { access, mkdir, open, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { EmbeddedDatabaseError } from './errors.ts';
import { registerSingleConnectionServer } from './pool.ts';

/** Connections a pool to the embedded database may open. */
export const EMBEDDED_POOL_SIZE = 1;

export interface EmbeddedPostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  /** Connections the server takes; `createPool(url)` applies it by itself. */
  poolSize: number;
  /** Where the database files live. */
  dataDir: string;
  /** Bytes of WebAssembly memory PostgreSQL holds now (it only grows, to the largest working set so far). */
  wasmMemory(): Promise<number>;
  /** Closes the server and the database, and releases the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Database directory, conventionally `<stateDir>/pglite`; created if missing. */
  dataDir: string;
  log?: { info(fields: object, message: string): void };
}

/** Starts PGlite persisted in `dataDir` and serves it on 127.0.0.1 at a free port. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { dataDir } = options;
  await mkdir(dataDir, { recursive: true });
  const releaseLock = await lockDataDir(`${dataDir}.lock`, dataDir);
  let thread: DatabaseThread;
  try {
    // A new directory is made by a thread of its own, which ends and takes initdb's memory with it (about 600 MiB).
    if (!(await isInitialised(dataDir))) await (await startThread(dataDir, true)).stop();
    await limitBuffers(dataDir);
    thread = await startThread(dataDir);
  } catch (error) {
    await releaseLock();
    throw new EmbeddedDatabaseError(`cannot start the embedded PostgreSQL in ${dataDir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const port = thread.address.split(':').at(-1);
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  const unregister = registerSingleConnectionServer(url);
  options.log?.info({ dataDir, url }, 'embedded PostgreSQL started');
  let stopping: Promise<void> | undefined;
  return {
    url,
    poolSize: EMBEDDED_POOL_SIZE,
    dataDir,
    wasmMemory: () => thread.wasmMemory(),
    stop() {
      stopping ??= (async () => {
        unregister();
        await thread.stop();
        await releaseLock();
      })();
      return stopping;
    },
  };
}

interface DatabaseThread {
  /** `host:port` the socket server listens on. */
  address: string;
  wasmMemory(): Promise<number>;
  stop(): Promise<void>;
}

type ThreadMessage = { kind: 'ready'; address: string } | { kind: 'failed'; message: string } | { kind: 'memory'; wasmBytes: number };

/** Starts PGlite and its socket server in a worker thread; resolves once it listens. */
function startThread(dataDir: string, initOnly = false): Promise<DatabaseThread> {
  const worker = new Worker(new URL('./embedded-thread.mjs', import.meta.url), {
    workerData: { dataDir, maxConnections: EMBEDDED_POOL_SIZE, initOnly },
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    void exited.then((code) => reject(new Error(`the database thread exited with code ${code} before it was ready`)));
    worker.once('message', (message: ThreadMessage) => {
      if (message.kind === 'failed') {
        reject(new Error(message.message));
        return;
      }
      if (message.kind !== 'ready') return;
      resolve({
        address: message.address,
        wasmMemory() {
          return new Promise((answer) => {
            const onMessage = (reply: ThreadMessage): void => {
              if (reply.kind !== 'memory') return;
              worker.off('message', onMessage);
              answer(reply.wasmBytes);
            };
            worker.on('message', onMessage);
            worker.postMessage('memory');
          });
        },
        async stop() {
          worker.postMessage('stop');
          await exited;
        },
      });
    });
  });
}

/**
 * The embedded cluster's shared buffers. PostgreSQL's default (128 MB) lives in PGlite's
 * WebAssembly memory, which never shrinks, inside our own process; a CI's working set is far
 * smaller, and a miss costs a read from the page cache. 32 MB takes about 100 MiB off the
 * resident size of every `run` and `dev`.
 */
const EMBEDDED_SHARED_BUFFERS = '32MB';

/** Sets shared_buffers in the cluster's postgresql.conf (the one line initdb wrote), idempotently. */
async function limitBuffers(dataDir: string): Promise<void> {
  const file = join(dataDir, 'postgresql.conf');
  const text = await readFile(file, 'utf8');
  const line = `shared_buffers = ${EMBEDDED_SHARED_BUFFERS}\t\t\t# set by harmonia-ci (db/embedded.ts)`;
  const updated = /^#?shared_buffers\s*=.*$/m.test(text) ? text.replace(/^#?shared_buffers\s*=.*$/m, line) : `${text}\n${line}\n`;
  if (updated !== text) await writeFile(file, updated);
}

/** Whether `dataDir` holds a database cluster already (PostgreSQL writes PG_VERSION when it makes one). */
async function isInitialised(dataDir: string): Promise<boolean> {
  return access(join(dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
}

/**
 * Two processes opening one PGlite directory would corrupt it, so the directory
 * is claimed with a pid file; a file left by a dead process is taken over.
 */
async function lockDataDir(lockPath: string, dataDir: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => unlink(lockPath).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new EmbeddedDatabaseError(
        `the embedded PostgreSQL in ${dataDir} is in use by process ${owner}; stop that process, ` +
          'use another state directory (HARMONIA_CI_STATE_DIR), or set HARMONIA_CI_DATABASE_URL',
      );
    }
    await unlink(lockPath).catch(() => {});
  }
  throw new EmbeddedDatabaseError(`cannot claim ${lockPath}: another process keeps creating it`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
