/**
 * A pipeline for one test file: its own Temporal namespace (test files run side by side against
 * one server, and workers of one file must never take the tasks of another), its own database,
 * in-process coordinator, evaluator and builders, on the runner's real services.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { startLocalWorkers, type LocalWorkers, type LocalWorkersOptions } from '../../cli/local-workers.ts';
import { readRunSummary, startLocalEval, waitForEvalWorkflow, type RunSummary } from '../../cli/run-progress.ts';
import type { LocalStack } from '../../cli/stack.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { ServerConfig } from '../../config/types.ts';
import { createLogger, routeTemporalLogs } from '../../lib/log.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { connectTemporalWorker, dataConverterOf, openTemporalConnection } from '../../temporal/connection.ts';
import { temporalConnectionConfig } from '../../temporal/settings.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { externalStack } from '../helpers/stack.ts';

export interface Pipeline {
  client: Client;
  db: TestDatabase;
  config: ServerConfig;
  stack: LocalStack;
  dir: string;
  /** Starts another set of workers (e.g. a second builder) on the same namespace and database. */
  addWorkers(options: Partial<LocalWorkersOptions>): Promise<LocalWorkers>;
  /** Pushes a jobset file and waits until its eval workflow has ended. */
  run(file: string, options?: { ref?: string; sha?: string; treeHash?: string }): Promise<RunSummary>;
  close(): Promise<void>;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through npm test (test/run.ts starts the services)`);
  return value;
}

/** The Temporal runtime can be set up once per process. */
let logRouted: Promise<void> | undefined;

export async function startPipeline(
  options: { env?: Record<string, string>; workers?: Partial<LocalWorkersOptions> } = {},
): Promise<Pipeline> {
  // A test may point the pipeline at another address (a TLS proxy) through its environment.
  const address = options.env?.HARMONIA_CI_TEMPORAL_ADDRESS ?? required('TEMPORAL_ADDRESS');
  logRouted ??= routeTemporalLogs(createLogger({ level: 'error' }));
  await logRouted;
  const daemonSocket = required('NIX_DAEMON_SOCKET_PATH');
  const namespace = `test-${randomUUID().slice(0, 8)}`;
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-pipeline-'));
  const db = await createTestDatabase();
  const config = await loadServerConfig({
    env: {
      HARMONIA_CI_STATE_DIR: join(dir, 'state'),
      HARMONIA_CI_DATABASE_URL: db.url,
      HARMONIA_CI_TEMPORAL_ADDRESS: address,
      HARMONIA_CI_TEMPORAL_NAMESPACE: namespace,
      HARMONIA_CI_BUILDER_MAX_JOBS: '2',
      ...options.env,
    },
  });
  // Connected as the roles connect: TLS and the payload codec configured in `env` apply here too.
  const settings = await temporalConnectionConfig(config.temporal, address);
  const connection = await openTemporalConnection(settings);
  await ensureNamespace(connection, namespace);
  await ensureSearchAttributes(connection, namespace);
  const dataConverter = dataConverterOf(settings);
  const client = new Client({ connection, namespace, ...(dataConverter ? { dataConverter } : {}) });
  const workerConnection = await connectTemporalWorker(settings);
  const stack = externalStack({ client, workerConnection, namespace, address, database: db, daemonSocket, dataConverter });
  const log = createLogger({ level: 'error' });
  const started: LocalWorkers[] = [];
  const addWorkers = async (more: Partial<LocalWorkersOptions>): Promise<LocalWorkers> => {
    const workers = await startLocalWorkers({ stack, config, log, ...more });
    started.push(workers);
    return workers;
  };
  await addWorkers(options.workers ?? {});

  return {
    client,
    db,
    config,
    stack,
    dir,
    addWorkers,
    async run(file, runOptions = {}) {
      const { evalId } = await startLocalEval({ client, pool: db.pool, path: file, ...runOptions });
      await waitForEvalWorkflow(client, db.pool, evalId);
      return readRunSummary(db.pool, evalId);
    },
    async close() {
      for (const workers of started.reverse()) await workers.stop();
      await workerConnection.close();
      await connection.close();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it holds; fails naming `what` after the timeout. */
export async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One job of a generated jobset. */
export interface JobSpec {
  /** Shell commands run by /bin/sh; `$out` must be created. Absolute paths (/bin/sleep) work: no sandbox. */
  script?: string;
  deps?: string[];
  fail?: boolean;
}

/**
 * Writes a `.nix` file of jobs whose derivations are unique to this call (a nonce in each), so
 * tests never find another test's outputs already built.
 */
export async function writeJobset(
  dir: string,
  jobs: Record<string, JobSpec>,
  { nonce = randomUUID(), file }: { nonce?: string; file?: string } = {},
): Promise<string> {
  const lines = Object.entries(jobs).map(([name, spec]) => {
    // Inputs arrive as environment variables named after the job (so job names are shell words).
    const deps = (spec.deps ?? []).map((d) => `echo ${d}=$${d} >> $out`).join('; ');
    const inputs = (spec.deps ?? []).map((d) => `${JSON.stringify(d)} = jobs.${JSON.stringify(d)};`).join(' ');
    const steps = [spec.script, `echo ${name} > $out`, deps, spec.fail ? `echo '${name} fails on purpose' >&2; exit 1` : ''];
    const script = steps.filter((step) => step).join('; ');
    return `  ${JSON.stringify(name)} = builtins.derivation { name = ${JSON.stringify(name)}; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; nonce = "${nonce}"; ${inputs} };`;
  });
  const path = join(dir, file ?? `jobs-${randomUUID().slice(0, 8)}.nix`);
  await writeFile(path, `let jobs = {\n${lines.join('\n')}\n}; in jobs\n`);
  return path;
}

export { waitForEvalWorkflow };
