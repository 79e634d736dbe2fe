import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { ConnectionClosedError } from '../../daemon/protocol/errors.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { daemonSocket, instantiate, nonce } from './helpers.ts';

const ABSENT = '/nix/store/00000000000000000000000000000000-absent';

/** Pids of the processes whose parent is `pid` (the daemon forks one worker per connection). */
function childrenOf(pid: number): Set<number> {
  const out = execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=']).toString();
  return new Set(out.split('\n').map((line) => Number(line.trim())).filter((n) => n > 0));
}

test('a connection whose daemon worker died is replaced and the operation still succeeds', async () => {
  const pool = new DaemonPool({ socketPath: daemonSocket(), maxConnections: 1 });
  try {
    // Activity ids carry the pid of the main daemon process in their high bits.
    const { drv } = instantiate(`{ drv = sh "pool-${nonce()}" "echo > $out"; }`, ['drv']);
    let daemonPid: number | undefined;
    await pool.use((client) => client.buildPaths([{ drvPath: drv! }], { onStartActivity: (a) => (daemonPid ??= Number(a.id >> 32n)) }));
    assert.ok(daemonPid, 'learned the daemon pid');
    await pool.close();

    // Find the worker forked for our next connection: the one child that appears when it opens.
    let worker: number | undefined;
    const fresh = new DaemonPool({ socketPath: daemonSocket(), maxConnections: 1 });
    for (let attempt = 0; attempt < 5 && worker === undefined; attempt++) {
      const before = childrenOf(daemonPid);
      const client = await fresh.acquire();
      const added = [...childrenOf(daemonPid)].filter((pid) => !before.has(pid));
      if (added.length === 1) worker = added[0];
      fresh.release(client, { discard: worker === undefined });
    }
    assert.ok(worker, 'identified the worker of our connection');
    process.kill(worker, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The idle connection is dead; the pool notices on use, reconnects and runs the query again.
    assert.equal(await fresh.use((client) => client.isValidPath(ABSENT)), false);
    assert.equal(fresh.size, 1);
    await fresh.close();
  } finally {
    await pool.close();
  }
});

test('a connection broken in use is dropped on release and the pool opens a fresh one', async () => {
  const pool = new DaemonPool({ socketPath: daemonSocket(), maxConnections: 1 });
  try {
    const client = await pool.acquire();
    client.connection.destroy();
    await assert.rejects(client.isValidPath(ABSENT), ConnectionClosedError);
    pool.release(client);
    assert.equal(pool.size, 0);
    const next = await pool.acquire();
    assert.notEqual(next, client);
    assert.equal(await next.isValidPath(ABSENT), false);
    pool.release(next);
  } finally {
    await pool.close();
  }
});

test('the pool never opens more than maxConnections and serves waiters in turn', async () => {
  const pool = new DaemonPool({ socketPath: daemonSocket(), maxConnections: 2 });
  let largest = 0;
  try {
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        pool.use(async (client) => {
          largest = Math.max(largest, pool.size);
          return client.isValidPath(ABSENT);
        }),
      ),
    );
    assert.deepEqual(results, Array(8).fill(false));
    assert.equal(largest, 2);
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.acquire(), ConnectionClosedError);
});
