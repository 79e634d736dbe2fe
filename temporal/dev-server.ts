/**
 * Runs `temporal server start-dev` as a child process: the single-machine default
 * (`harmonia-ci dev`, with a persistent SQLite file and the Web UI) and the test
 * suite's server (in memory, headless, free ports).
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { findFreePorts, isAddressInUseMessage, isPortFree, isPortOpen } from '../lib/ports.ts';
import { describeExit, spawnManaged, type ManagedProcess } from '../lib/managed-process.ts';
import { locateTemporalCli } from '../lib/tools.ts';
import { DevServerError } from './errors.ts';
import { messageOf } from './rpc.ts';
import { ensureSearchAttributes, searchAttributeCliFlags } from './search-attributes.ts';

/** The logging the launcher does; a pino logger fits. */
export interface DevServerLog {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface DevServerOptions {
  /** Namespace created at launch (with our search attributes). */
  namespace: string;
  log: DevServerLog;
  /** Keeps state in `<stateDir>/temporal.sqlite` unless dbFile is given. */
  stateDir?: string;
  /** SQLite file for persistent state; with neither this nor stateDir, state lives in memory. */
  dbFile?: string;
  /** Frontend gRPC port (default 7233); 0 picks a free one. */
  port?: number;
  /** Web UI port (default: the gRPC port + 1000, the CLI's rule); 0 picks a free one. */
  uiPort?: number;
  /** No Web UI (tests). */
  headless?: boolean;
  /** Interface to bind (default 127.0.0.1). */
  ip?: string;
  /** How long to wait for the server to answer (default 30 s). */
  startTimeoutMs?: number;
  /** Path of the `temporal` CLI (default: HARMONIA_CI_TEMPORAL_CLI, PATH, .tools/venv/bin). */
  cliPath?: string;
}

export interface TemporalDevServer {
  /** `host:port` of the frontend, for TEMPORAL_ADDRESS. */
  address: string;
  /** Web UI address, absent when headless. */
  uiUrl: string | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and nothing else. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: what the SQLite file holds at that moment is what a restart finds. */
  kill(): Promise<void>;
}

const MAX_PORT_ATTEMPTS = 3;

interface Ports {
  grpc: number;
  ui: number | undefined;
}

async function choosePorts(options: DevServerOptions): Promise<Ports> {
  const grpc = options.port ?? 7233;
  // A free gRPC port says nothing about the UI port the CLI would derive from it.
  const ui = options.headless ? undefined : (options.uiPort ?? (grpc === 0 ? 0 : grpc + 1000));
  const [freeGrpc, freeUi] = await findFreePorts(2, options.ip ?? '127.0.0.1');
  return { grpc: grpc === 0 ? freeGrpc! : grpc, ui: ui === 0 ? freeUi! : ui };
}

/**
 * Dynamic config of the dev server that `run`, `dev` and the tests start (the README's
 * "Dispatch cost and reaction time" has the same for a Temporal cluster):
 * - one partition per task queue: one machine needs no more;
 * - fair dispatch between projects (fairness keys on the builders' activities);
 * - the history service's transfer queue read as often as it has tasks: at its default of 20
 *   reads a second, every task that a workflow task or an activity result creates (the next
 *   activity, the next workflow task, a signal's task) waited for the next read, about 25 ms at
 *   the median, twice on the way from one build to the next.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'matching.enableFairness=true',
  'history.transferProcessorMaxPollRPS=1000',
];

function serverArgs(options: DevServerOptions, ports: Ports, dbFile: string | undefined): string[] {
  const args = ['server', 'start-dev', '--ip', options.ip ?? '127.0.0.1', '--port', String(ports.grpc), '--log-level', 'warn'];
  args.push('--namespace', options.namespace, ...searchAttributeCliFlags());
  for (const value of DEV_SERVER_DYNAMIC_CONFIG) {
    args.push('--dynamic-config-value', value);
  }
  if (dbFile) {
    // WAL lets the UI and the frontend read while history writes; synchronous=normal is safe with WAL.
    args.push('--db-filename', dbFile, '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }
  if (ports.ui === undefined) args.push('--headless');
  else args.push('--ui-port', String(ports.ui), '--ui-disable-news-fetch');
  return args;
}

async function answers(host: string, port: number, namespace: string): Promise<boolean> {
  // gRPC backs off a full second after a refused connection; a plain TCP probe does not.
  if (!(await isPortOpen(host, port))) return false;
  // lazy + close in finally: Connection.connect leaves its channel open when it fails.
  const connection = Connection.lazy({ address: `${host}:${port}`, connectTimeout: 1000 });
  try {
    await connection.ensureConnected();
    await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  } finally {
    await connection.close();
  }
}

/** Registers our search attributes through a short-lived connection. */
async function registerSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = Connection.lazy({ address });
  try {
    await connection.ensureConnected();
    await ensureSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }
}

/** Fails early on a fixed port someone else holds: the health check would otherwise reach that server. */
async function assertFixedPortsFree(host: string, ports: Ports, options: DevServerOptions): Promise<void> {
  const fixed = [options.port === 0 ? undefined : ports.grpc, options.uiPort === 0 ? undefined : ports.ui];
  for (const port of fixed) {
    if (port !== undefined && !(await isPortFree(host, port))) {
      throw new DevServerError(`port ${port} on ${host} is already in use: is another Temporal server running? Stop it, or choose other ports for the dev server.`);
    }
  }
}

/** Waits until the server answers for `namespace`; resolves 'exited' if the process died first. */
async function waitUntilReady(child: ManagedProcess, host: string, port: number, namespace: string, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.hasExited()) return 'exited';
    if (await answers(host, port, namespace)) return 'ready';
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return child.hasExited() ? 'exited' : 'timeout';
}

/** Starts a Temporal dev server and resolves once it answers gRPC calls for the namespace. */
export async function startTemporalDevServer(options: DevServerOptions): Promise<TemporalDevServer> {
  const cli = options.cliPath ?? locateTemporalCli();
  const dbFile = options.dbFile ?? (options.stateDir ? join(options.stateDir, 'temporal.sqlite') : undefined);
  if (dbFile) await mkdir(dirname(dbFile), { recursive: true });
  const autoPorts = options.port === 0 || options.uiPort === 0;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const { log } = options;

  for (let attempt = 1; ; attempt++) {
    const ports = await choosePorts(options);
    const host = options.ip ?? '127.0.0.1';
    const address = `${host}:${ports.grpc}`;
    await assertFixedPortsFree(host, ports, options);
    const child = spawnManaged(cli, serverArgs(options, ports, dbFile), { onLine: (line) => log.debug(`temporal: ${line}`) });
    const outcome = await waitUntilReady(child, host, ports.grpc, options.namespace, timeoutMs);

    if (outcome === 'ready') {
      // start-dev registers --search-attribute only for a new database; an existing file needs this.
      try {
        await registerSearchAttributes(address, options.namespace);
      } catch (error) {
        await child.stop();
        throw new DevServerError(`the Temporal dev server at ${address} started but rejected our search attributes: ${messageOf(error)}`, { cause: error });
      }
      let stopping = false;
      void child.exited.then((exit) => {
        if (!stopping) log.warn(`Temporal dev server at ${address} ${describeExit(exit)}:\n${child.recentOutput()}`);
      });
      const uiUrl = ports.ui === undefined ? undefined : `http://${host}:${ports.ui}`;
      log.info(`Temporal dev server at ${address}${uiUrl ? `, Web UI ${uiUrl}` : ''}${dbFile ? `, state in ${dbFile}` : ' (in memory)'}`);
      return {
        address,
        uiUrl,
        async stop() {
          stopping = true;
          await child.stop(5000);
        },
        async kill() {
          stopping = true;
          if (child.pid !== undefined && !child.hasExited()) process.kill(child.pid, 'SIGKILL');
          await child.exited;
        },
      };
    }

    await child.stop(1000);
    const output = child.recentOutput(15);
    if (isAddressInUseMessage(output) && autoPorts && attempt < MAX_PORT_ATTEMPTS) {
      log.debug(`Temporal dev server: a picked port was taken meanwhile, retrying (${attempt}/${MAX_PORT_ATTEMPTS})`);
      continue;
    }
    const exit = await child.exited;
    const why =
      outcome === 'timeout'
        ? `did not answer within ${timeoutMs} ms`
        : isAddressInUseMessage(output)
          ? `could not bind its ports (${ports.grpc}${ports.ui ? `, UI ${ports.ui}` : ''} on ${host}): is another Temporal server running? Stop it or choose other ports`
          : describeExit(exit);
    throw new DevServerError(`\`${cli} ${serverArgs(options, ports, dbFile).slice(0, 2).join(' ')}\` ${why}. Last output:\n${output || '(none)'}`);
  }
}
