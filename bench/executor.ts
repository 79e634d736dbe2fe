/**
 * Builds a layered DAG of trivial derivations three ways, each on freshly generated derivations:
 *   1. our executor, one derivation per build-derivation call, ready ones in topological order, 2 at a time;
 *   2. one `nix-store --realise <drv>` process per derivation, same order and parallelism;
 *   3. one `nix-build -j2` for the whole DAG (the baseline).
 * All three go through the same nix-daemon: $NIX_DAEMON_SOCKET_PATH, else the system socket if a
 * daemon answers there, else a private daemon started for the run.
 *
 *   npm run bench -- executor [--layers 10] [--width 100] [--jobs 2]
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createExecutor } from '../daemon/executor/executor.ts';
import { DaemonPool, DEFAULT_DAEMON_SOCKET } from '../daemon/protocol/pool.ts';
import { daemonAnswers, startNixDaemon, type NixDaemon as TestNixDaemon } from '../lib/nix-daemon.ts';
import { instantiateDag, runInTopologicalOrder, type Dag, type DagShape } from './dag/generate.ts';

const execFileAsync = promisify(execFile);
const NIX_OPTIONS = ['--option', 'build-users-group', '', '--option', 'substituters', ''];

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer, got '${args[at + 1]}'`);
  return value;
}

async function daemonSocket(scratch: string): Promise<{ socketPath: string; daemon?: TestNixDaemon }> {
  const fromEnv = process.env.NIX_DAEMON_SOCKET_PATH;
  if (fromEnv) return { socketPath: fromEnv };
  if (existsSync(DEFAULT_DAEMON_SOCKET) && (await daemonAnswers(DEFAULT_DAEMON_SOCKET))) return { socketPath: DEFAULT_DAEMON_SOCKET };
  const daemon = await startNixDaemon({ dir: scratch });
  return { socketPath: daemon.socketPath, daemon };
}

async function viaExecutor(dag: Dag, socketPath: string, jobs: number, scratch: string): Promise<void> {
  const pool = new DaemonPool({ socketPath, maxConnections: jobs + 1 });
  try {
    const executor = await createExecutor({ pool, rootsDir: join(scratch, 'roots') });
    await runInTopologicalOrder(dag.nodes, jobs, async (node) => {
      const outcome = await executor.build({ drvPath: node.drvPath, drv: node.drv, inputPaths: node.inputPaths });
      if (outcome.kind !== 'succeeded') throw new Error(`${node.drvPath}: ${outcome.kind} ${'message' in outcome ? outcome.message : ''}`);
    });
  } finally {
    await pool.close();
  }
}

async function viaNixStorePerDrv(dag: Dag, socketPath: string, jobs: number): Promise<void> {
  const env = { ...process.env, NIX_REMOTE: `unix://${socketPath}` };
  await runInTopologicalOrder(dag.nodes, jobs, async (node) => {
    await execFileAsync('nix-store', [...NIX_OPTIONS, '--realise', node.drvPath], { env });
  });
}

async function viaNixBuild(dag: Dag, socketPath: string, jobs: number): Promise<void> {
  const env = { ...process.env, NIX_REMOTE: `unix://${socketPath}` };
  await execFileAsync('nix-build', [...NIX_OPTIONS, '-j', String(jobs), '--no-out-link', dag.nixFile], { env, maxBuffer: 1 << 26 });
}

async function timed(label: string, work: () => Promise<void>): Promise<number> {
  process.stdout.write(`  ${label}… `);
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${seconds.toFixed(1)} s\n`);
  return seconds;
}

/** Entry point for `npm run bench -- executor`. */
export async function run(args: string[]): Promise<void> {
  const shape: DagShape = { layers: option(args, 'layers', 10), width: option(args, 'width', 100) };
  const jobs = option(args, 'jobs', 2);
  const scratch = mkdtempSync(join(tmpdir(), 'harmonia-bench-executor-'));
  const { socketPath, daemon } = await daemonSocket(scratch);
  const count = shape.layers * shape.width;
  process.stdout.write(`executor benchmark: ${shape.layers} layers × ${shape.width} = ${count} derivations, ${jobs} at a time, daemon ${socketPath}\n`);
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const dags: Dag[] = [];
  try {
    const fresh = (way: string) => {
      const started = performance.now();
      const dag = instantiateDag(shape, `bench-${way}-${runId}`, socketPath);
      dags.push(dag);
      process.stdout.write(`  (instantiated ${dag.nodes.length} fresh derivations for ${way} in ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
      return dag;
    };
    const ours = fresh('executor');
    const perDrv = fresh('nix-store');
    const whole = fresh('nix-build');
    const tOurs = await timed(`our executor (${jobs} parallel build-derivation calls)`, () => viaExecutor(ours, socketPath, jobs, scratch));
    const tPerDrv = await timed(`nix-store --realise per derivation (${jobs} parallel)`, () => viaNixStorePerDrv(perDrv, socketPath, jobs));
    const tWhole = await timed(`nix-build -j${jobs} of the whole DAG (baseline)`, () => viaNixBuild(whole, socketPath, jobs));

    const row = (name: string, seconds: number) =>
      `${name.padEnd(34)} ${seconds.toFixed(1).padStart(7)} s ${(count / seconds).toFixed(1).padStart(8)} drv/s ${(seconds / tWhole).toFixed(2).padStart(7)}× baseline\n`;
    process.stdout.write('\n');
    process.stdout.write(row('our executor', tOurs));
    process.stdout.write(row('nix-store --realise per drv', tPerDrv));
    process.stdout.write(row(`nix-build -j${jobs} (baseline)`, tWhole));
    const ratio = tOurs / tWhole;
    process.stdout.write(`\ngoal: executor within 1.5× of nix-build: ${ratio.toFixed(2)}× — ${ratio <= 1.5 ? 'met' : 'MISSED'}\n`);
  } finally {
    for (const dag of dags) dag.dispose();
    await daemon?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}
