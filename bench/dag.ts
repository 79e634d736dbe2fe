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
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { LOCAL_TASKS_PER_SLOT, startLocalWorkers } from '../cli/local-workers.ts';
import { readRunSummary, startLocalEval, waitForEvalWorkflow } from '../cli/run-progress.ts';
import { startLocalStack } from '../cli/stack.ts';
import { loadServerConfig } from '../config/server.ts';
import { createLogger, routeTemporalLogs } from '../lib/log.ts';
import { describeCpu, describeCpuPer, currentMemory, describeMemory, peakMemory, resetPeakMemory, snapshotCpu } from './dag/cpu.ts';
import { measureTemporalFloor } from './dag/floor.ts';
import { describeChainSteps, describePhases } from './dag/phases.ts';
import { describeGoal, type Goal } from './dag/goals.ts';
import { describeLatencies, edgeLatencies, percentile } from './dag/latency.ts';
import { describeHistoryUse, historyUse } from '../temporal/history-use.ts';
import { evalWorkflowId } from '../workflows/definitions.ts';
import { dagExpression, type DagShape } from './dag/generate.ts';

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** What the benchmark can measure, each on its own with `--only`: fresh (with nix-build and the floor), cached, chain. */
const PARTS = ['fresh', 'cached', 'chain'] as const;
type Part = (typeof PARTS)[number];

/** Derivations in the chain whose reaction time is measured. */
const CHAIN_LENGTH = 30;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      layers: { type: 'string', default: '10' },
      width: { type: 'string', default: '100' },
      only: { type: 'string', default: PARTS.join(',') },
    },
  });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  const parts = new Set(values.only.split(',').map((part) => part.trim()));
  for (const part of parts) {
    if (!PARTS.includes(part as Part)) throw new Error(`unknown part '${part}' in --only: choose from ${PARTS.join(', ')}`);
  }
  const total = shape.layers * shape.width;
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-bench-dag-'));
  const log = createLogger({ level: 'error' });
  await routeTemporalLogs(log);
  const config = await loadServerConfig({ env: { ...process.env, HARMONIA_CI_STATE_DIR: join(dir, 'state') } });
  say(`dag: ${shape.layers} layers × ${shape.width} = ${total} derivations, state in ${dir}`);
  const stack = await startLocalStack({ config, log, ui: false, temporalPort: 0, report: (line) => say(`  ${line}`) });
  const workers = await startLocalWorkers({ stack, config, log });
  say(`  idle stack (resident now): ${describeMemory(await currentMemory())}`);
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

      const floorCpuBefore = await snapshotCpu();
      const floor = await measureTemporalFloor({
        client: stack.client,
        connection: stack.workerConnection,
        namespace: stack.namespace,
        count: total,
        builderSlots: config.builder.maxJobs * LOCAL_TASKS_PER_SLOT,
      });
      const floorCpuAfter = await snapshotCpu();
      say(`temporal floor (${total} bare workflows) ${seconds(floor)}  ${(total / (floor / 1000)).toFixed(0)} workflows/s, ${(floor / baseline).toFixed(2)}× nix-build`);
      say(`  one signal-with-start and one activity each, no database, no Nix: what the server and SDK cost alone`);
      say(`  CPU: ${describeCpu(floorCpuBefore, floorCpuAfter)}; per workflow ${describeCpuPer(floorCpuBefore, floorCpuAfter, total)}`);

      const startup = await peakMemory();
      await resetPeakMemory();
      const cpuBefore = await snapshotCpu();
      const fresh = await runOnce(file);
      const cpuAfter = await snapshotCpu();
      say(`harmonia-ci (fresh DAG)            ${seconds(fresh.ms)}  ${(total / (fresh.ms / 1000)).toFixed(0)} builds/s`);
      say(`  ratio to nix-build: ${(fresh.ms / baseline).toFixed(2)}×; to the Temporal floor: ${(fresh.ms / floor).toFixed(2)}×`);
      say(`  CPU: ${describeCpu(cpuBefore, cpuAfter)}; per build ${describeCpuPer(cpuBefore, cpuAfter, total)}`);
      const peak = await peakMemory();
      say(`  peak memory during the pipeline run: ${describeMemory(peak)}; before it (stack start, nix-build, floor): ${describeMemory(startup)}`);
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

    if (parts.has('chain')) {
      // Reaction time on an idle pipeline: a chain builds one derivation at a time, so nothing queues.
      const chainShape = { layers: CHAIN_LENGTH, width: 1 };
      const chainBaselineMs = await timeNixBuild(await freshDag('chain-baseline', chainShape));
      const chain = await runOnce(await freshDag('chain', chainShape));
      const latencies = await edgeLatencies(pool, chain.evalId);
      say(`chain of ${CHAIN_LENGTH} (one build at a time)     ${seconds(chain.ms)}, nix-build -j2 ${seconds(chainBaselineMs)}`);
      say(`  ${describeLatencies(latencies)}`);
      say(`  ${await describeChainSteps(pool, chain.evalId)}`);
      say(`  ${await describePhases(pool, chain.evalId)}`);
      goals.push({ name: 'idle pipeline: dependency finished → dependent started, p50', measured: percentile(latencies.started, 50), goal: 80, unit: ' ms' });
      goals.push({ name: `idle pipeline: chain of ${CHAIN_LENGTH}`, measured: chain.ms, goal: 3000, unit: ' ms' });
    }
    say('goals:');
    for (const goal of goals) say(`  ${describeGoal(goal)}`);
  } finally {
    await workers.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
