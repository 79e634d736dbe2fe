// The embedded PostgreSQL's own thread (db/embedded.ts): PGlite runs PostgreSQL as WebAssembly
// with synchronous file I/O, so it gets a core of its own instead of stalling the workers'
// event loop. Plain JavaScript: worker threads do not inherit the TypeScript loader.
import process from 'node:process';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const { dataDir, maxConnections, initOnly } = workerData;
let db;
let server;
try {
  db = await PGlite.create({ dataDir });
  if (initOnly) {
    // Making the cluster (initdb) grows a thread's memory for good: a thread of its own makes it
    // and ends, and the serving thread starts on the made directory at a fraction of that.
    await db.close();
    parentPort.postMessage({ kind: 'ready', address: '' });
    parentPort.close();
  } else {
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
    await server.start();
    parentPort.postMessage({ kind: 'ready', address: server.getServerConn() });
    parentPort.on('message', async (message) => {
      if (message === 'memory') {
        // PostgreSQL's WebAssembly memory: it grows to the largest working set and never shrinks.
        parentPort.postMessage({ kind: 'memory', wasmBytes: db.mod?.HEAPU8?.byteLength ?? 0 });
        return;
      }
      if (message !== 'stop') return;
      await server.stop().catch(() => {});
      await db.close().catch(() => {});
      // Closing the port lets the thread end; the parent waits for its exit.
      parentPort.close();
    });
  }
} catch (error) {
  await server?.stop().catch(() => {});
  await db?.close().catch(() => {});
  parentPort.postMessage({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}
