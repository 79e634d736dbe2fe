import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DaemonError } from '../../daemon/protocol/errors.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { WireWriter } from '../../daemon/protocol/wire.ts';
import { addFile, daemonSocket, nixCli, nixCliResult, nonce } from './helpers.ts';

// Obsolete operations that Nix 2.8's daemon still serves; they are the only ones that drive
// STDERR_WRITE (export-path tunnels its output) and STDERR_READ (import-paths pulls its input).
const EXPORT_PATH = 16;
const IMPORT_PATHS = 27;

let pool: DaemonPool;
before(() => {
  pool = new DaemonPool({ socketPath: daemonSocket() });
});
after(() => pool.close());

test('STDERR_ERROR is decoded without colours; the connection is replaced, as the daemon may hang up after it', async () => {
  const client = await pool.acquire();
  await assert.rejects(client.queryPathInfo('/tmp/not-in-the-store'), (error: unknown) => {
    assert.ok(error instanceof DaemonError);
    assert.match(error.daemonMessage, /not in the Nix store/);
    assert.ok(!error.message.includes('\u001b'));
    assert.deepEqual(error.traces, []);
    return true;
  });
  // An error raised while the daemon still reads the request ends its side of the conversation
  // (and Nix 2.8 repeats the error before hanging up), so the client never reuses the connection.
  assert.equal(client.connection.broken, true);
  pool.release(client);
  assert.equal(await pool.use((c) => c.isValidPath('/nix/store/00000000000000000000000000000000-absent')), false);
});

test('STDERR_WRITE and STDERR_READ relay payloads: export then import matches nix-store --export', async () => {
  const path = addFile(`tunnel-${nonce()}`, 'tunnelled\n'.repeat(10_000));
  const oracle = nixCli('nix-store', ['--export', path]);

  const exported = await pool.use((client) =>
    client.connection.exclusive(async (io) => {
      const chunks: Buffer[] = [];
      await io.send(new WireWriter().u64(EXPORT_PATH).string(path).u64(0).toBuffer());
      await io.stderr({ writeSink: (data) => void chunks.push(Buffer.from(data)) });
      assert.equal(await io.reader.readU64(), 1);
      return Buffer.concat(chunks);
    }),
  );
  // nix-store --export frames each path's export with a 1 before it and the list with a 0 after.
  const one = new WireWriter().u64(1).toBuffer();
  const zero = new WireWriter().u64(0).toBuffer();
  const framed = Buffer.concat([one, exported, zero]);
  assert.ok(framed.equals(oracle), 'export-path bytes equal nix-store --export');

  await pool.use((client) => client.deletePaths([path]));
  let offset = 0;
  const requests: number[] = [];
  const imported = await pool.use((client) =>
    client.connection.exclusive(async (io) => {
      await io.send(new WireWriter().u64(IMPORT_PATHS).toBuffer());
      await io.stderr({
        readSource: async (max) => {
          requests.push(max);
          const chunk = framed.subarray(offset, offset + max);
          offset += chunk.length;
          return chunk;
        },
      });
      return io.reader.readStrings();
    }),
  );
  assert.deepEqual(imported, [path]);
  assert.ok(requests.length > 1, 'the daemon pulled the payload in several STDERR_READ requests');
  assert.equal(nixCliResult('nix-store', ['--verify-path', path]).status, 0);
});
