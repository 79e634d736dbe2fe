/**
 * Drills on a fleet: each role (`harmonia-ci worker coordinator|evaluator|signer|builder`) in its
 * own process as docker-compose.yml runs them, an S3 cache (SeaweedFS) behind presigned URLs, and
 * faults that hit one part while the rest runs on: builders SIGKILLed mid-build, the coordinator
 * killed and restarted, the Temporal dev server SIGKILLed and restarted on its SQLite file, a
 * private PostgreSQL cluster restarted, S3 stopped for 60 s during uploads, the signer killed
 * mid-publish. A fault delays the run; it must not change what the run ends with.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { appendFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import type { Pool } from 'pg';
import { S3Backend } from '../../cache/s3.ts';
import { readRunSummary, startLocalEval, type RunSummary } from '../../cli/run-progress.ts';
import { createPool } from '../../db/pool.ts';
import { startTemporalDevServer, type TemporalDevServer } from '../../temporal/dev-server.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { evalWorkflowId } from '../../workflows/definitions.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { requireEnv } from '../helpers/env.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.ts';
import { namespaceHost, type NamespaceHost } from '../helpers/namespace-host.ts';
import { startSeaweedS3, type SeaweedS3 } from '../helpers/seaweedfs.ts';
import { CLI, outcome, writeDag, type DrillContext, type Outcome, type Shape } from './common.ts';

type Role = 'coordinator' | 'evaluator' | 'signer' | 'builder';

export interface RoleProcess {
  name: string;
  role: Role;
  child: ChildProcess;
  exited: Promise<number | null>;
}

interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The services a fleet drill replaces with its own, so that it can take them away. */
export interface FleetOptions {
  /** A Temporal dev server of the drill's own, on a SQLite file (else the runner's). */
  ownTemporal?: boolean;
  /** A private PostgreSQL cluster (else a fresh database on the runner's server). */
  ownPostgres?: boolean;
  /** A SeaweedFS of the drill's own (else a fresh bucket on the runner's). */
  ownS3?: boolean;
  builders?: number;
  /**
   * The evaluator and each builder on a host of its own: an empty /nix and its own nix-daemon
   * (test/helpers/namespace-host.ts), reading our cache through `cache serve` as a remote host does.
   */
  ownStores?: boolean;
}

export interface Fleet {
  dir: string;
  pool: Pool;
  client: Client;
  roles: Map<string, RoleProcess>;
  builtLog: string;
  temporal?: TemporalDevServer & { restart(): Promise<void> };
  postgres?: PrivatePostgres;
  s3?: SeaweedS3;
  cache: S3Backend;
  /** The hosts of the evaluator and builders, with `ownStores`. */
  hosts: Map<string, NamespaceHost>;
  /** Where hosts read our cache, and the key they trust, with `ownStores`. */
  cacheServer?: { url: string; publicKey: string };
  /** Starts one role process and resolves once it polls its task queue. */
  start(role: Role, name?: string): Promise<RoleProcess>;
  /** SIGKILLs a role process and waits until it is gone. */
  kill(name: string): Promise<void>;
  /** Stops every role (SIGTERM, SIGKILL after 10 s) and removes what the fleet started. */
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `fn` while a service is away (the drill's own reads must ride out the fault too). */
async function patiently<T>(what: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
      await sleep(500);
    }
  }
}

export async function startFleet(context: DrillContext, label: string, options: FleetOptions = {}): Promise<Fleet> {
  const dir = await mkdtemp(join(context.root, `${label}-`));
  const builtLog = join(dir, 'built');
  await appendFile(builtLog, '');
  const namespace = `drill-${label}-${Math.random().toString(16).slice(2, 8)}`;
  const cleanups: Array<() => Promise<unknown>> = [];

  let temporal: Fleet['temporal'];
  let address = context.services.TEMPORAL_ADDRESS!;
  if (options.ownTemporal) {
    const dbFile = join(dir, 'temporal.sqlite');
    const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };
    let server = await startTemporalDevServer({ namespace, port: 0, headless: true, dbFile, log: quiet });
    address = server.address;
    const port = Number(address.split(':')[1]);
    temporal = {
      address,
      uiUrl: undefined,
      stop: () => server.stop(),
      kill: () => server.kill(),
      restart: async () => {
        server = await startTemporalDevServer({ namespace, port, headless: true, dbFile, log: quiet });
      },
    };
    cleanups.push(() => server.stop());
  }
  const connection = await Connection.connect({ address });
  await ensureNamespace(connection, namespace);
  await ensureSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  cleanups.push(() => connection.close());

  let databaseUrl: string;
  let pool: Pool;
  let postgres: PrivatePostgres | undefined;
  if (options.ownPostgres) {
    postgres = await startPrivatePostgres();
    databaseUrl = postgres.url;
    await execa(process.execPath, [CLI, 'migrate'], { env: { ...process.env, DATABASE_URL: databaseUrl, HARMONIA_CI_STATE_DIR: join(dir, 'migrate') } });
    pool = createPool(databaseUrl);
    cleanups.push(() => postgres!.destroy());
    cleanups.push(() => pool.end());
  } else {
    const db: TestDatabase = await createTestDatabase();
    databaseUrl = db.url;
    pool = db.pool;
    cleanups.push(() => db.drop());
  }

  let s3: SeaweedS3 | undefined;
  let target: S3Target;
  if (options.ownS3) {
    s3 = await startSeaweedS3({ dir: join(dir, 'seaweedfs') });
    target = s3;
    cleanups.push(() => s3!.stop());
  } else {
    target = {
      endpoint: context.services.HARMONIA_TEST_S3_ENDPOINT!,
      region: 'us-east-1',
      bucket: `drill-${label}-${Math.random().toString(16).slice(2, 8)}`,
      accessKeyId: context.services.HARMONIA_TEST_S3_ACCESS_KEY_ID!,
      secretAccessKey: context.services.HARMONIA_TEST_S3_SECRET_ACCESS_KEY!,
    };
    const admin = new S3Client({ endpoint: target.endpoint, region: target.region, forcePathStyle: true, credentials: target });
    await admin.send(new CreateBucketCommand({ Bucket: target.bucket }));
    admin.destroy();
  }
  const cache = new S3Backend({
    bucket: target.bucket,
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
  });
  cleanups.push(() => cache.close());

  const secrets = join(dir, 'secrets');
  await mkdir(secrets, { recursive: true });
  await writeFile(join(secrets, 's3-credentials'), `[default]\naws_access_key_id = ${target.accessKeyId}\naws_secret_access_key = ${target.secretAccessKey}\n`, { mode: 0o600 });
  const publicKey = (await execa(process.execPath, [CLI, 'keys', 'generate', `${label}-1`, '--secret', join(secrets, 'signing-key'), '--public', join(secrets, 'signing-key.pub')])).stdout.trim();

  // What docker-compose.yml gives each role, and no more: builders hold no secrets.
  const common = {
    HARMONIA_CI_TEMPORAL_ADDRESS: address,
    HARMONIA_CI_TEMPORAL_NAMESPACE: namespace,
    HARMONIA_CI_LOG_LEVEL: 'info',
    HARMONIA_CI_LIMITS_BUILDER_HEARTBEAT_TIMEOUT: '10s',
  };
  const cacheEnv = {
    HARMONIA_CI_CACHE_URL: `s3://${target.bucket}?endpoint=${target.endpoint}&region=${target.region}`,
    HARMONIA_CI_S3_CREDENTIALS_FILE: join(secrets, 's3-credentials'),
  };
  const roleEnv: Record<Role, Record<string, string>> = {
    coordinator: { DATABASE_URL: databaseUrl },
    evaluator: { DATABASE_URL: databaseUrl, NIX_DAEMON_SOCKET_PATH: context.services.NIX_DAEMON_SOCKET_PATH! },
    signer: { ...cacheEnv, HARMONIA_CI_CACHE_SIGNING_KEY_FILE: join(secrets, 'signing-key') },
    builder: { NIX_DAEMON_SOCKET_PATH: context.services.NIX_DAEMON_SOCKET_PATH! },
  };
  // The runner's variables would point a role at the shared services: each role gets only its own.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('HARMONIA_') && key !== 'DATABASE_URL' && key !== 'TEMPORAL_ADDRESS' && key !== 'NIX_DAEMON_SOCKET_PATH'),
  );

  const roles = new Map<string, RoleProcess>();
  const hosts = new Map<string, NamespaceHost>();
  /** Spawns a process in its own process group (a kill takes its children too) and waits for `readyText`. */
  const launch = async (name: string, role: RoleProcess['role'], file: string, args: string[], env: Record<string, string>, readyText: RegExp): Promise<RoleProcess & { output: () => string }> => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let seen = '';
    const ready = new Promise<void>((resolve, reject) => {
      const watch = (chunk: Buffer): void => {
        if (seen.length < 65_536) seen += chunk.toString();
        if (readyText.test(seen)) resolve();
      };
      child.stdout!.on('data', watch);
      child.stderr!.on('data', watch);
      void exited.then((code) => reject(new Error(`the ${name} process exited with ${code} before it was ready; see ${join(dir, `${name}.log`)}`)));
    });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const handle = { name, role, child, exited };
    roles.set(name, handle);
    await ready;
    return { ...handle, output: () => seen };
  };

  // Hosts without our store read the cache as remote builders do: over HTTP, trusting the signer's key.
  let cacheServer: Fleet['cacheServer'];
  if (options.ownStores) {
    const served = await launch('cache', 'signer', process.execPath, [CLI, 'cache', 'serve', '--port', '0'], { ...inherited, ...common, ...cacheEnv, HARMONIA_CI_STATE_DIR: join(dir, 'cache') }, /^serving .* at http:\/\/\S+$/m);
    cacheServer = { url: /^serving .* at (http:\/\/\S+)$/m.exec(served.output())![1]!, publicKey };
  }

  const start = async (role: Role, name: string = role): Promise<RoleProcess> => {
    const args = [CLI, 'worker', role, ...(role === 'builder' ? ['--host', name, '--max-jobs', '2', '--heartbeat-interval', '2'] : [])];
    const env = { ...inherited, ...common, ...roleEnv[role], HARMONIA_CI_STATE_DIR: join(dir, name) };
    if (cacheServer && (role === 'builder' || role === 'evaluator')) {
      const host = hosts.get(name) ?? (await namespaceHost(join(dir, 'hosts', name)));
      hosts.set(name, host);
      // As a user starts a builder on another machine: where our cache is, and the key to trust.
      const wrapped = host.wrap(process.execPath, [...args, '--substituter', cacheServer.url, ...(role === 'builder' ? ['--trusted-public-key', cacheServer.publicKey] : [])]);
      return launch(name, role, wrapped.file, wrapped.args, { ...env, ...host.env }, /worker running/);
    }
    return launch(name, role, process.execPath, args, env, /worker running/);
  };
  const kill = async (name: string): Promise<void> => {
    const handle = roles.get(name);
    if (!handle) throw new Error(`no role process named ${name}`);
    signalGroup(handle, 'SIGKILL');
    await handle.exited;
  };

  const stopAll = async (): Promise<void> => {
    await Promise.all(
      [...roles.values()].map(async (handle) => {
        signalGroup(handle, 'SIGTERM');
        const gone = await Promise.race([handle.exited.then(() => true), sleep(10_000).then(() => false)]);
        if (!gone) signalGroup(handle, 'SIGKILL');
        await handle.exited;
        // A host's daemon and build processes go with it.
        signalGroup(handle, 'SIGKILL');
      }),
    );
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    await Promise.all([start('coordinator'), start('evaluator'), start('signer'), ...Array.from({ length: options.builders ?? 2 }, (_, i) => start('builder', `builder-${i + 1}`))]);
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    dir,
    pool,
    client,
    roles,
    hosts,
    ...(cacheServer ? { cacheServer } : {}),
    builtLog,
    temporal,
    postgres,
    s3,
    cache,
    start,
    kill,
    stop: stopAll,
  };
}

/** A drill context for a test file, on the services test/run.ts started; remove `root` after. */
export async function testDrillContext(prefix: string, shape: Shape): Promise<DrillContext> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const names = ['TEMPORAL_ADDRESS', 'NIX_DAEMON_SOCKET_PATH', 'HARMONIA_TEST_S3_ENDPOINT', 'HARMONIA_TEST_S3_ACCESS_KEY_ID', 'HARMONIA_TEST_S3_SECRET_ACCESS_KEY'];
  const services = Object.fromEntries(names.map((name) => [name, requireEnv(name)]));
  return { root, shape, services, say: () => undefined };
}

/** Signals a role's whole process group (it was started detached); nothing if it is gone. */
function signalGroup(handle: RoleProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-handle.child.pid!, signal);
  } catch {
    // Already gone.
  }
}

/** Succeeded builds so far (0 while the database is away). */
export async function succeeded(fleet: Fleet): Promise<number> {
  try {
    const { rows } = await fleet.pool.query<{ n: string }>("SELECT count(*) AS n FROM build_jobs WHERE status = 'succeeded'");
    return Number(rows[0]!.n);
  } catch {
    return 0;
  }
}

/** Waits until at least `fraction` of the DAG's derivations have been built. */
export async function untilBuilt(fleet: Fleet, shape: Shape, fraction: number): Promise<void> {
  const want = Math.max(1, Math.floor(shape.layers * shape.width * fraction));
  const deadline = Date.now() + 600_000;
  while ((await succeeded(fleet)) < want) {
    if (Date.now() > deadline) throw new Error(`fewer than ${want} builds succeeded within 10 minutes`);
    await sleep(100);
  }
}

/**
 * Waits until the eval's workflow has closed (its row says `succeeded` once evaluation is done;
 * the workflow runs on until its builds end), riding out outages of PostgreSQL and Temporal.
 */
export async function untilEnded(fleet: Fleet, evalId: string): Promise<RunSummary> {
  const deadline = Date.now() + 900_000;
  for (;;) {
    const status = await fleet.client.workflow
      .getHandle(evalWorkflowId(evalId))
      .describe()
      .then((description) => description.status.name)
      .catch(() => undefined);
    if (status && status !== 'RUNNING') return patiently('reading the run summary', () => readRunSummary(fleet.pool, evalId));
    if (Date.now() > deadline) throw new Error(`eval ${evalId} still ${status ?? 'unreadable'} after 15 minutes`);
    await sleep(250);
  }
}

/**
 * One fleet drill: starts the fleet, pushes the DAG, runs `fault` alongside (it says what it did),
 * waits for the eval to end and judges it. The fleet is torn down whatever happens.
 */
export async function fleetDrill(
  context: DrillContext,
  label: string,
  options: FleetOptions,
  fault: (fleet: Fleet) => Promise<string | undefined>,
): Promise<Outcome> {
  const fleet = await startFleet(context, label, options);
  try {
    const file = await writeDag(join(fleet.dir, 'source'), context.shape, fleet.dir, fleet.builtLog);
    const started = Date.now();
    const { evalId } = await startLocalEval({ client: fleet.client, pool: fleet.pool, path: file });
    const [note, summary] = await Promise.all([fault(fleet), untilEnded(fleet, evalId)]);
    const seconds = (Date.now() - started) / 1000;
    const result = await outcome({ builtLog: fleet.builtLog, db: { pool: fleet.pool } }, summary, seconds, fleet.cache);
    return note ? { ...result, note: [note, result.note].filter(Boolean).join('; ') } : result;
  } finally {
    await fleet.stop();
  }
}

// ---- the drills ----

export const fleetBaseline = (context: DrillContext): Promise<Outcome> => fleetDrill(context, 'fleet', {}, async () => undefined);

/** The builder of a build in flight SIGKILLed at 1/4, 1/2 and 3/4 of the DAG, and started again. */
export const buildersKilled = (context: DrillContext): Promise<Outcome> =>
  fleetDrill(context, 'builders', { builders: 2 }, async (fleet) => {
    const victims: string[] = [];
    for (const fraction of [0.25, 0.5, 0.75]) {
      await untilBuilt(fleet, context.shape, fraction);
      // Builds are short: watch for one in flight (building or uploading) and kill its builder at once.
      let victim: string | undefined;
      const deadline = Date.now() + 10_000;
      while (!victim && Date.now() < deadline) {
        const { rows } = await fleet.pool.query<{ node: string }>("SELECT node FROM build_jobs WHERE status IN ('building', 'uploading') AND node IS NOT NULL LIMIT 1");
        victim = rows[0]?.node;
      }
      if (!victim) throw new Error('no build was in flight for 10 s: nothing to kill a builder in the middle of');
      await fleet.kill(victim);
      victims.push(victim);
      await fleet.start('builder', victim);
    }
    return `killed mid-build: ${victims.join(', ')}`;
  });

/** The coordinator SIGKILLed at 1/3 and started again `seconds` later. */
export const coordinatorKilled = (context: DrillContext, seconds = 3): Promise<Outcome> =>
  fleetDrill(context, 'coordinator', {}, async (fleet) => {
    await untilBuilt(fleet, context.shape, 1 / 3);
    await fleet.kill('coordinator');
    await sleep(seconds * 1000);
    await fleet.start('coordinator');
    return `down ${seconds} s`;
  });

/** The Temporal dev server SIGKILLed at 1/3 and started again on its SQLite file `seconds` later. */
export const temporalKilled = (context: DrillContext, seconds = 5): Promise<Outcome> =>
  fleetDrill(context, 'temporal', { ownTemporal: true }, async (fleet) => {
    await untilBuilt(fleet, context.shape, 1 / 3);
    await fleet.temporal!.kill();
    await sleep(seconds * 1000);
    await fleet.temporal!.restart();
    return `down ${seconds} s`;
  });

/** The private PostgreSQL cluster stopped (fast shutdown) at 1/3 and started again `seconds` later. */
export const postgresRestarted = (context: DrillContext, seconds = 10): Promise<Outcome> =>
  fleetDrill(context, 'postgres', { ownPostgres: true }, async (fleet) => {
    await untilBuilt(fleet, context.shape, 1 / 3);
    await fleet.postgres!.stop();
    await sleep(seconds * 1000);
    await fleet.postgres!.start();
    return `down ${seconds} s`;
  });

/** SeaweedFS stopped at 1/3, while builds upload and the signer writes narinfos, for `seconds`. */
export const s3Stopped = (context: DrillContext, seconds = 60): Promise<Outcome> =>
  fleetDrill(context, 's3', { ownS3: true }, async (fleet) => {
    await untilBuilt(fleet, context.shape, 1 / 3);
    await fleet.s3!.stop();
    await sleep(seconds * 1000);
    await fleet.s3!.restart();
    return `down ${seconds} s`;
  });

/** The signer SIGKILLed at 1/4, 1/2 and 3/4 (publishing runs throughout) and started again 3 s later. */
export const signerKilled = (context: DrillContext): Promise<Outcome> =>
  fleetDrill(context, 'signer', {}, async (fleet) => {
    for (const fraction of [0.25, 0.5, 0.75]) {
      await untilBuilt(fleet, context.shape, fraction);
      await fleet.kill('signer');
      await sleep(3_000);
      await fleet.start('signer');
    }
    return 'killed 3 times, down 3 s each';
  });

/** No fault, but the evaluator and each builder on a host with a store of its own: everything a build needs comes through the cache. */
export const fleetOwnStores = (context: DrillContext): Promise<Outcome> =>
  fleetDrill(context, 'stores', { ownStores: true }, async (fleet) => {
    const stores = [...fleet.hosts.keys()].join(', ');
    return `own stores: ${stores}`;
  });
