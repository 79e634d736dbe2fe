/**
 * The command line against the runner's real services, for one test file: its own Temporal
 * namespace (test files run side by side and workers must never take another file's tasks), its
 * own database, a temporary state directory, and `harmonia-ci` run as a real subprocess.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startLocalWorkers, type LocalWorkers, type LocalWorkersOptions } from '../../cli/local-workers.ts';
import { externalStack } from '../helpers/stack.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { requireEnv } from '../helpers/env.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A `harmonia-ci` process left running (a worker), with its output so far. */
export interface CliProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches, rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export interface CliHarness {
  namespace: string;
  address: string;
  db: TestDatabase;
  dir: string;
  client: Client;
  /** Environment for `harmonia-ci` subprocesses: this file's namespace, database and state. */
  env: Record<string, string>;
  /** Runs `harmonia-ci <args>` to completion. */
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** Starts `harmonia-ci <args>` and leaves it running; close() kills what is left. */
  start(args: string[], env?: Record<string, string>): CliProcess;
  /** In-process workers (coordinator, evaluator, signer by default; no builder) on this namespace and database. */
  startWorkers(options?: Partial<LocalWorkersOptions>): Promise<LocalWorkers>;
  close(): Promise<void>;
}

/** In-process workers log only problems (each `harmonia-ci` subprocess logs on its own); once per process. */
function quietTemporalLogs(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch (error) {
    if ((error as Error).name !== 'IllegalStateError') throw error;
  }
}

export async function startCliHarness(): Promise<CliHarness> {
  quietTemporalLogs();
  const address = requireEnv('TEMPORAL_ADDRESS');
  const daemonSocket = requireEnv('NIX_DAEMON_SOCKET_PATH');
  const namespace = `cli-${randomUUID().slice(0, 8)}`;
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-cli-'));
  const db = await createTestDatabase();
  const connection = await Connection.connect({ address });
  await ensureNamespace(connection, namespace);
  await ensureSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  const env: Record<string, string> = {
    TEMPORAL_ADDRESS: address,
    HARMONIA_CI_TEMPORAL_NAMESPACE: namespace,
    DATABASE_URL: db.url,
    HARMONIA_CI_STATE_DIR: join(dir, 'state'),
    HARMONIA_CI_CACHE_URL: join(dir, 'cache'),
    NIX_DAEMON_SOCKET_PATH: daemonSocket,
    HARMONIA_CI_LOG_LEVEL: 'info',
  };
  const processes: ChildProcess[] = [];
  const workers: LocalWorkers[] = [];
  let workerConnection: NativeConnection | undefined;

  const start = (args: string[], extra: Record<string, string> = {}): CliProcess => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    processes.push(child);
    let output = '';
    const listeners = new Set<() => void>();
    const append = (chunk: Buffer): void => {
      output += chunk.toString();
      for (const listener of listeners) listener();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return {
      child,
      output: () => output,
      exited,
      waitFor(pattern, timeoutMs = 30_000) {
        return new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (!pattern.test(output)) return;
            cleanup();
            resolve();
          };
          const timer = setTimeout(() => {
            cleanup();
            reject(new Error(`timed out waiting for ${pattern} in the output of harmonia-ci ${args.join(' ')}:\n${output}`));
          }, timeoutMs);
          const cleanup = (): void => {
            clearTimeout(timer);
            listeners.delete(check);
          };
          listeners.add(check);
          void exited.then((code) => {
            if (!listeners.has(check)) return;
            cleanup();
            reject(new Error(`harmonia-ci ${args.join(' ')} exited (${code}) before printing ${pattern}:\n${output}`));
          });
          check();
        });
      },
    };
  };

  return {
    namespace,
    address,
    db,
    dir,
    client,
    env,
    start,
    async cli(args, extra = {}) {
      const child = start(args, extra);
      let stdout = '';
      let stderr = '';
      child.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await child.exited;
      return { code, stdout, stderr };
    },
    async startWorkers(options = {}) {
      workerConnection ??= await NativeConnection.connect({ address });
      const config = await loadServerConfig({ env });
      const stack = externalStack({ client, workerConnection, namespace, address, database: db, daemonSocket });
      const started = await startLocalWorkers({ stack, config, log: createLogger({ level: 'error' }), builder: false, ...options });
      workers.push(started);
      return started;
    },
    async close() {
      for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const started of workers.reverse()) await started.stop();
      await workerConnection?.close();
      await connection.close();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A `.nix` file of jobs built with /bin/sh, unique to this call (a nonce in each derivation).
 * `script` runs before `$out` is written; `deps` become environment variables named after them.
 */
export async function writeJobs(dir: string, jobs: Record<string, { script?: string; deps?: string[] }>, file = `jobs-${randomUUID().slice(0, 8)}.nix`): Promise<string> {
  const nonce = randomUUID();
  const lines = Object.entries(jobs).map(([name, spec]) => {
    const inputs = (spec.deps ?? []).map((d) => `${d} = jobs.${d};`).join(' ');
    const script = [spec.script, `echo ${name} > $out`].filter(Boolean).join('; ');
    return `  ${name} = builtins.derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; nonce = "${nonce}"; ${inputs} };`;
  });
  const path = join(dir, file);
  await writeFile(path, `let jobs = {\n${lines.join('\n')}\n}; in jobs\n`);
  return path;
}

/** Polls `check` until it returns a value other than undefined. */
export async function waitUntil<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
