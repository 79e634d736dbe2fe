/**
 * `node --import tsx bench/dag/floor-child.ts <address> <namespace> <count> <builder slots> <eager|signal>`:
 * the Temporal floor (floor.ts) in a process of its own, against the server at `address`. The dag
 * benchmark runs it so: the floor's workers and their workflow cache leave nothing in the heap of
 * the process whose peak memory the pipeline run is measured by. Prints `{"ms": …}`.
 */
import { Client } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { measureTemporalFloor } from './floor.ts';

const [address, namespace, count, builderSlots, how] = process.argv.slice(2);
if (!address || !namespace || !count || !builderSlots || (how !== 'eager' && how !== 'signal')) {
  throw new Error('usage: floor-child.ts <address> <namespace> <count> <builder slots> <eager|signal>');
}
// The SDK's own logging would interleave with the benchmark's lines.
Runtime.install({ logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
const connection = await NativeConnection.connect({ address });
try {
  const ms = await measureTemporalFloor({
    client: new Client({ connection, namespace }),
    connection,
    namespace,
    count: Number(count),
    builderSlots: Number(builderSlots),
    eager: how === 'eager',
  });
  process.stdout.write(`${JSON.stringify({ ms })}\n`);
} finally {
  await connection.close();
}
