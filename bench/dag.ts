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
import { describeCpu, describeMemory, peakMemory, snapshotCpu } from './dag/cpu.ts';
import { measureTemporalFloor } from './dag/floor.ts';
import { describeLatencies, edgeLatencies } from './dag/latency.ts';
import { describeHistoryUse, historyUse } from '../temporal/history-use.ts';
import { evalWorkflowId } from '../workflows/definitions.ts';
import { dagExpression, type DagShape } from './dag/generate.ts';

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** Derivations in the chain whose reaction time is measured. */
const CHAIN_LENGTH = 30;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { layers: { type: 'string', default: '10' }, width: { type: 'string', default: '100' } } });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  const total = shape.layers * shape.width;
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-bench-dag-'));
  const log = createLogger({ level: 'error' });
  await routeTemporalLogs(log);
  const config = await loadServerConfig({ env: { ...process.env, HARMONIA_CI_STATE_DIR: join(dir, 'state') } });
  say(`dag: ${shape.layers} layers × ${shape.width} = ${total} derivations, state in ${dir}`);
  const stack = await startLocalStack({ config, log, ui: false, temporalPort: 0, report: (line) => say(`  ${line}`) });
  const workers = await startLocalWorkers({ stack, config, log });
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

    const baselineFile = await freshDag('baseline', shape);
    const baselineCpu = await snapshotCpu();
    const baseline = await timeNixBuild(baselineFile);
    say(`nix-build -j2 (fresh DAG)          ${seconds(baseline)}  ${(total / (baseline / 1000)).toFixed(0)} builds/s`);
    say(`  CPU: ${describeCpu(baselineCpu, await snapshotCpu())}`);

    const floorCpu = await snapshotCpu();
    const floor = await measureTemporalFloor({
      client: stack.client,
      connection: stack.workerConnection,
      namespace: stack.namespace,
      count: total,
      builderSlots: config.builder.maxJobs * LOCAL_TASKS_PER_SLOT,
    });
    say(`temporal floor (${total} bare workflows) ${seconds(floor)}  ${(total / (floor / 1000)).toFixed(0)} workflows/s, ${(floor / baseline).toFixed(2)}× nix-build`);
    say(`  one signal-with-start and one activity each, no database, no Nix: what the server and SDK cost alone`);
    say(`  CPU: ${describeCpu(floorCpu, await snapshotCpu())}`);

    const file = await freshDag('dag', shape);
    const pool = stack.database.pool;
    const runOnce = async (path = file): Promise<{ ms: number; evalId: string }> => {
      const begin = performance.now();
      const { evalId } = await startLocalEval({ client: stack.client, pool, path });
      await waitForEvalWorkflow(stack.client, pool, evalId);
      const ms = performance.now() - begin;
      const summary = await readRunSummary(pool, evalId);
      const failed = summary.jobs.filter((j) => j.status !== 'succeeded');
      if (failed.length > 0) throw new Error(`${failed.length} jobs did not succeed, e.g. ${failed[0]!.attr}: ${failed[0]!.status}`);
      return { ms, evalId };
    };
    const cpuBefore = await snapshotCpu();
    const fresh = await runOnce();
    const cpuAfter = await snapshotCpu();
    say(`harmonia-ci (fresh DAG)            ${seconds(fresh.ms)}  ${(total / (fresh.ms / 1000)).toFixed(0)} builds/s`);
    say(`  ratio to nix-build: ${(fresh.ms / baseline).toFixed(2)}× (goal ≤ 3×); to the Temporal floor: ${(fresh.ms / floor).toFixed(2)}×`);
    say(`  CPU: ${describeCpu(cpuBefore, cpuAfter)}`);
    say(`  peak memory (whole run so far): ${describeMemory(await peakMemory())}`);

    say(`  ${describeLatencies(await edgeLatencies(pool, fresh.evalId))}`);

    const phases = await pool.query<Record<string, string | null>>(
      `SELECT extract(epoch FROM v.finished_at - v.started_at) * 1000 AS evaluation_ms,
              extract(epoch FROM min(b.started_at) - v.finished_at) * 1000 AS first_ms,
              avg(extract(epoch FROM b.started_at - b.created_at) * 1000) AS queued_ms,
              avg(extract(epoch FROM b.finished_at - b.started_at) * 1000) AS building_ms
         FROM evaluations v
         JOIN evaluation_builds e ON e.eval_id = v.id
         JOIN build_jobs b ON b.id = e.build_id
        WHERE v.id = $1
        GROUP BY v.id`,
      [fresh.evalId],
    );
    const phase = (key: string): string => `${Number(phases.rows[0]?.[key] ?? Number.NaN).toFixed(0)} ms`;
    say(`  evaluation ${phase('evaluation_ms')}, evaluation done → first build started ${phase('first_ms')}`);
    say(`  per build (mean): created → started ${phase('queued_ms')}, started → built and published ${phase('building_ms')}`);

    say(`  eval workflow: ${describeHistoryUse(await historyUse(stack.client, evalWorkflowId(fresh.evalId)))}`);

    const cached = await runOnce();
    say(`harmonia-ci (same DAG, all cached) ${seconds(cached.ms)}  (goal < 5 s)`);

    // Reaction time on an idle pipeline: a chain builds one derivation at a time, so nothing queues.
    const chainShape = { layers: CHAIN_LENGTH, width: 1 };
    const chainBaselineMs = await timeNixBuild(await freshDag('chain-baseline', chainShape));
    const chain = await runOnce(await freshDag('chain', chainShape));
    say(`chain of ${CHAIN_LENGTH} (one build at a time)     ${seconds(chain.ms)}, nix-build -j2 ${seconds(chainBaselineMs)}`);
    say(`  ${describeLatencies(await edgeLatencies(pool, chain.evalId))}`);
  } finally {
    await workers.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
