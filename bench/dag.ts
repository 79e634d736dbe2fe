/**
 * `npm run bench -- dag [--layers 10 --width 100]`: a layered DAG of fresh derivations through the
 * whole pipeline on the embedded stack (Temporal dev server, PGlite, in-process workers), against
 * `nix-build -j2` on an identical fresh DAG in the same run; then the same DAG again, fully cached.
 * Prints times, the ratio, builds per second, and the latency from a dependency finishing to its
 * dependent being dispatched and started on a builder (p50, p99); last, the same latencies on an
 * idle pipeline (a chain, one build at a time), which is how fast CI reacts. Between the two, the same number of bare workflows
 * on the same server (bench/dag/floor.ts) shows what Temporal alone costs per derivation, and CPU
 * time by program shows where the cores went.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import pg from 'pg';
import { connectionConfig } from '../db/pool.ts';
import { LOCAL_TASKS_PER_SLOT, startLocalWorkers } from '../cli/local-workers.ts';
import { readRunSummary, startLocalEval, waitForEvalWorkflow } from '../cli/run-progress.ts';
import { startLocalStack } from '../cli/stack.ts';
import { loadServerConfig } from '../config/server.ts';
import { createLogger, routeTemporalLogs } from '../lib/log.ts';
import { describeCpu, describeCpuPer, currentMemory, describeMemory, peakMemory, resetPeakMemory, snapshotCpu } from './dag/cpu.ts';
import { describeChainSteps, describeChainTimeline, describePhases } from './dag/phases.ts';
import { describeGoal, type Goal } from './dag/goals.ts';
import { describeLatencies, edgeLatencies, percentile } from './dag/latency.ts';
import { describeHistoryUse, historyUse } from '../temporal/history-use.ts';
import { evalWorkflowId } from '../workflows/definitions.ts';
import { dagExpression, type DagShape } from './dag/generate.ts';

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** What the benchmark can measure, each on its own with `--only`: fresh (with nix-build and the floor), cached, chain, push (the example). */
const PARTS = ['fresh', 'cached', 'chain', 'push'] as const;
type Part = (typeof PARTS)[number];

/** Derivations in the chain whose reaction time is measured. */
const CHAIN_LENGTH = 30;

/** Where the pipeline keeps its state in a run: the embedded default, or a PostgreSQL server. */
const DATABASES = ['embedded', 'native'] as const;
type DatabaseKind = (typeof DATABASES)[number];

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      layers: { type: 'string', default: '10' },
      width: { type: 'string', default: '100' },
      only: { type: 'string', default: PARTS.join(',') },
      databases: { type: 'string', default: DATABASES.join(',') },
    },
  });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  const parts = new Set(values.only.split(',').map((part) => part.trim()));
  for (const part of parts) {
    if (!PARTS.includes(part as Part)) throw new Error(`unknown part '${part}' in --only: choose from ${PARTS.join(', ')}`);
  }
  const databases = values.databases.split(',').map((kind) => kind.trim());
  for (const kind of databases) {
    if (!DATABASES.includes(kind as DatabaseKind)) throw new Error(`unknown database '${kind}' in --databases: choose from ${DATABASES.join(', ')}`);
  }
  if (databases.length > 1) {
    // One process per database: what one left in the heap would count in the other's memory figures.
    for (const kind of databases) {
      const rest = args.filter((arg, i) => !arg.startsWith('--databases') && args[i - 1] !== '--databases');
      await execa(process.execPath, [...process.execArgv, fileURLToPath(new URL('./run.ts', import.meta.url)), 'dag', ...rest, '--databases', kind], { stdio: 'inherit' });
    }
    return;
  }
  const kind = databases[0] as DatabaseKind;
  let goals: Goal[];
  if (kind === 'embedded') {
    say('— on the embedded PostgreSQL (PGlite), the default —');
    goals = await runOnDatabase(shape, parts, 'embedded', {});
  } else {
    const server = process.env.HARMONIA_BENCH_POSTGRES_URL || process.env.DATABASE_URL || NATIVE_DEFAULT_URL;
    const database = await createBenchDatabase(server);
    if (database === undefined) {
      say(`— native PostgreSQL: none reachable at ${server} (set HARMONIA_BENCH_POSTGRES_URL), skipped —`);
      return;
    }
    say(`— on native PostgreSQL (${database.url}) —`);
    try {
      goals = await runOnDatabase(shape, parts, 'native', { HARMONIA_CI_DATABASE_URL: database.url });
    } finally {
      await database.drop();
    }
  }
  if (goals.length === 0) return;
  say(`goals [${kind}]:`);
  for (const goal of goals) say(`  ${describeGoal(goal)}`);
}

const NATIVE_DEFAULT_URL = 'postgresql://127.0.0.1:5432/postgres';

/** A new database on the server at `serverUrl` for one run, or undefined when the server cannot be reached. */
async function createBenchDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const name = `harmonia_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client(connectionConfig(serverUrl));
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch {
    await admin.end().catch(() => undefined);
    return undefined;
  }
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client(connectionConfig(serverUrl));
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** The chosen parts on a stack whose database is `kind`; the goals, each named with the database. */
async function runOnDatabase(shape: DagShape, parts: Set<string>, kind: DatabaseKind, env: Record<string, string>): Promise<Goal[]> {
  const total = shape.layers * shape.width;
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-bench-dag-'));
  const log = createLogger({ level: 'error' });
  await routeTemporalLogs(log);
  const config = await loadServerConfig({ env: { ...process.env, ...env, HARMONIA_CI_STATE_DIR: join(dir, 'state') } });
  say(`dag: ${shape.layers} layers × ${shape.width} = ${total} derivations, state in ${dir}`);
  const stack = await startLocalStack({ config, log, ui: false, temporalPort: 0, report: (line) => say(`  ${line}`) });
  const workers = await startLocalWorkers({ stack, config, log });
  /** `; PGlite's WebAssembly memory N MiB` on the embedded database. */
  const wasm = async (): Promise<string> => {
    const bytes = await stack.database.wasmMemory?.();
    return bytes === undefined ? '' : `; of it PGlite's WebAssembly memory ${Math.round(bytes / 2 ** 20)} MiB`;
  };
  say(`  idle stack (resident now): ${describeMemory(await currentMemory())}${await wasm()}`);
  try {
    /** A file of the DAG's derivations, fresh (never built) through a nonce of its own. */
    const freshDag = async (name: string, dagShape: DagShape): Promise<string> => {
      const path = join(dir, `${name}.nix`);
      await writeFile(path, dagExpression(dagShape, randomUUID()));
      return path;
    };
    /** Milliseconds `nix-build -j2` takes for a file, through the same daemon. */
    const timeNixBuild = async (path: string): Promise<number> => {
      const started = performance.now();
      const options = ['--option', 'build-users-group', '', '--option', 'substituters', '', '-j2', '--no-out-link'];
      await execa('nix-build', [...options, path], { env: { ...process.env, NIX_REMOTE: `unix://${stack.daemonSocket}` } });
      return performance.now() - started;
    };

    const pool = stack.database.pool;
    const runOnce = async (path: string): Promise<{ ms: number; evalId: string }> => {
      const begin = performance.now();
      const { evalId } = await startLocalEval({ client: stack.client, pool, path });
      await waitForEvalWorkflow(stack.client, pool, evalId);
      const ms = performance.now() - begin;
      const summary = await readRunSummary(pool, evalId);
      const failed = summary.jobs.filter((j) => j.status !== 'succeeded');
      if (failed.length > 0) throw new Error(`${failed.length} jobs did not succeed, e.g. ${failed[0]!.attr}: ${failed[0]!.status}`);
      return { ms, evalId };
    };
    const goals: Goal[] = [];
    const file = await freshDag('dag', shape);

    if (parts.has('fresh')) {
      const baselineFile = await freshDag('baseline', shape);
      const baselineCpu = await snapshotCpu();
      const baseline = await timeNixBuild(baselineFile);
      say(`nix-build -j2 (fresh DAG)          ${seconds(baseline)}  ${(total / (baseline / 1000)).toFixed(0)} builds/s`);
      say(`  CPU: ${describeCpu(baselineCpu, await snapshotCpu())}`);

      const measureFloor = async (eager: boolean): Promise<number> => {
        const cpuBefore = await snapshotCpu();
        // In a process of its own: its workers would otherwise leave their heap in this process's
        // resident memory, which the pipeline's peak is measured by.
        const child = await execa(process.execPath, [
          ...process.execArgv,
          fileURLToPath(new URL('./dag/floor-child.ts', import.meta.url)),
          stack.temporalAddress,
          stack.namespace,
          String(total),
          String(config.builder.maxJobs * LOCAL_TASKS_PER_SLOT),
          eager ? 'eager' : 'signal',
        ]);
        const { ms } = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as { ms: number };
        const cpuAfter = await snapshotCpu();
        const how = eager ? 'eager start' : 'signal-with-start';
        say(`temporal floor, ${how} (${total} bare workflows) ${seconds(ms)}  ${(total / (ms / 1000)).toFixed(0)} workflows/s, ${(ms / baseline).toFixed(2)}× nix-build`);
        say(`  one ${how} and one activity each, no database, no Nix: what the server and SDK cost alone`);
        say(`  CPU: ${describeCpu(cpuBefore, cpuAfter)}; per workflow ${describeCpuPer(cpuBefore, cpuAfter, total)}`);
        return ms;
      };
      const floor = await measureFloor(false);
      // The floor again, started as the pipeline starts its builds (eager, through the worker's connection).
      const eagerFloor = await measureFloor(true);

      const startup = await peakMemory();
      await resetPeakMemory();
      const cpuBefore = await snapshotCpu();
      const fresh = await runOnce(file);
      const cpuAfter = await snapshotCpu();
      say(`harmonia-ci (fresh DAG)            ${seconds(fresh.ms)}  ${(total / (fresh.ms / 1000)).toFixed(0)} builds/s`);
      say(`  ratio to nix-build: ${(fresh.ms / baseline).toFixed(2)}×; to the Temporal floor: ${(fresh.ms / floor).toFixed(2)}× (${(fresh.ms / eagerFloor).toFixed(2)}× the eager-start floor)`);
      say(`  CPU: ${describeCpu(cpuBefore, cpuAfter)}; per build ${describeCpuPer(cpuBefore, cpuAfter, total)}`);
      const peak = await peakMemory();
      say(`  peak memory during the pipeline run: ${describeMemory(peak)}; before it (stack start, nix-build, floor): ${describeMemory(startup)}${await wasm()}`);
      say(`  ${describeLatencies(await edgeLatencies(pool, fresh.evalId))}`);
      say(`  ${await describePhases(pool, fresh.evalId)}`);
      say(`  eval workflow: ${describeHistoryUse(await historyUse(stack.client, evalWorkflowId(fresh.evalId)))}`);
      goals.push({ name: `fresh ${total}-derivation DAG, ratio to the Temporal floor`, measured: fresh.ms / floor, goal: 1.4, unit: '×' });
      goals.push({ name: `peak RSS of the process running the pipeline (${total} DAG)`, measured: peak.get('node') ?? Number.NaN, goal: 600, unit: ' MiB' });
    }

    if (parts.has('cached')) {
      // Without the fresh part the DAG is built by nix-build first: its outputs are then valid locally.
      if (!parts.has('fresh')) await timeNixBuild(file);
      const cached = await runOnce(file);
      say(`harmonia-ci (same DAG, all cached) ${seconds(cached.ms)}  ${await describePhases(pool, cached.evalId)}`);
      const cachedGoalMs = total <= 1000 ? 800 : total <= 10_000 ? 3000 : Number.NaN;
      goals.push({ name: `fully cached ${total}-derivation DAG`, measured: cached.ms, goal: cachedGoalMs, unit: ' ms' });
    }

    if (parts.has('push')) {
      // The bundled example with derivations of its own (a nonce), so its builds are new.
      const example = await readFile(new URL('../examples/jobs.nix', import.meta.url), 'utf8');
      const path = join(dir, 'example.nix');
      await writeFile(path, example.replace('inherit name system;', `inherit name system; benchNonce = "${randomUUID()}";`));
      const pushedAt = Date.now();
      const { evalId } = await startLocalEval({ client: stack.client, pool, path });
      await waitForEvalWorkflow(stack.client, pool, evalId);
      const { rows } = await pool.query<{ first: Date | null }>(
        'SELECT min(b.started_at) AS first FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id WHERE e.eval_id = $1',
        [evalId],
      );
      const first = rows[0]?.first;
      say(`example (examples/jobs.nix, new derivations): push → first build started ${first ? `${first.getTime() - pushedAt} ms` : 'never'}`);
      say(`  ${await describePhases(pool, evalId)}`);
      if (first) goals.push({ name: 'push of the example → first build started', measured: first.getTime() - pushedAt, goal: Number.NaN, unit: ' ms' });
    }

    if (parts.has('chain')) {
      // Reaction time on an idle pipeline: a chain builds one derivation at a time, so nothing queues.
      const chainShape = { layers: CHAIN_LENGTH, width: 1 };
      const chainBaselineMs = await timeNixBuild(await freshDag('chain-baseline', chainShape));
      const chain = await runOnce(await freshDag('chain', chainShape));
      const latencies = await edgeLatencies(pool, chain.evalId);
      say(`chain of ${CHAIN_LENGTH} (one build at a time)     ${seconds(chain.ms)}, nix-build -j2 ${seconds(chainBaselineMs)}`);
      say(`  ${describeLatencies(latencies)}`);
      say(`  ${await describeChainSteps(pool, chain.evalId)}`);
      say(`  ${await describeChainTimeline(stack.client, pool, chain.evalId)}`);
      say(`  ${await describePhases(pool, chain.evalId)}`);
      goals.push({ name: 'idle pipeline: dependency finished → dependent started, p50', measured: percentile(latencies.started, 50), goal: 80, unit: ' ms' });
      goals.push({ name: `idle pipeline: chain of ${CHAIN_LENGTH}`, measured: chain.ms, goal: 3000, unit: ' ms' });
    }
    return goals.map((goal) => ({ ...goal, name: `${goal.name} [${kind}]` }));
  } finally {
    await workers.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
