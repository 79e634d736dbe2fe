/**
 * A private PostgreSQL cluster for tests that stop the database: initdb into a temporary
 * directory with the machine's binaries, on a free port. The shared server is never touched.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from '../../lib/ports.ts';

const execFileAsync = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
// PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
const AS_ROOT = process.getuid?.() === 0;

function run(program: string, args: string[]) {
  const [file, argv] = AS_ROOT ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
  return execFileAsync(file, argv, { timeout: 60_000 });
}

async function postgresOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (!AS_ROOT) return undefined;
  const [uid, gid] = await Promise.all(['-u', '-g'].map(async (flag) => Number((await execFileAsync('id', [flag, 'postgres'])).stdout.trim())));
  return { uid: uid!, gid: gid! };
}

export interface PrivatePostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`. */
  url: string;
  port: number;
  start(): Promise<void>;
  /** Fast shutdown: open connections are terminated, as in a database restart. */
  stop(): Promise<void>;
  /** Stops the cluster and deletes its directory. */
  destroy(): Promise<void>;
}

/** Creates and starts a cluster; `destroy()` it in `after`. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'hci-pg-'));
  const owner = await postgresOwner();
  if (owner) await chown(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const port = await findFreePort();
  await run(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const ctl = (...args: string[]) => run(join(BIN, 'pg_ctl'), ['-D', data, '-w', '-t', '30', ...args]);
  let running = false;
  const start = async (): Promise<void> => {
    await ctl('-o', options, '-l', join(dir, 'log'), 'start');
    running = true;
  };
  const stop = async (): Promise<void> => {
    await ctl('-m', 'fast', 'stop');
    running = false;
  };
  await start();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    async destroy() {
      if (running) await stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
