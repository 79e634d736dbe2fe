/**
 * `npm run bench -- eval [--layers 100 --width 100]`: the built-in evaluator against one
 * `nix-instantiate` of the same attributes, in the same run, on two generated jobsets of
 * layers × width jobs: a layered DAG (every job of a layer reads two of the layer before, so jobs
 * share most of their dependencies) and a flat set of independent jobs. Each is measured with new
 * `.drv` files (a jobset no evaluation has written yet, as after a push that changes everything)
 * and with existing ones (the same jobset again). nix-eval-jobs is measured too when it is on PATH.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { evaluateJobs } from '../daemon/eval/index.ts';
import { findExecutable } from '../daemon/eval/nix.ts';
import type { EvaluatorChoice } from '../daemon/eval/types.ts';
import { dagExpression, type DagShape } from './dag/generate.ts';
import { describeGoal, type Goal } from './dag/goals.ts';

const execFileAsync = promisify(execFile);
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
/** Offline and as root without build users, like the rest of the benchmarks. */
const NIX_OPTIONS = { 'build-users-group': '', substituters: '' };
const GOAL = 1.3;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { layers: { type: 'string', default: '100' }, width: { type: 'string', default: '100' } } });
  const layers = Number(values.layers);
  const width = Number(values.width);
  const total = layers * width;
  const workers = availableParallelism();
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-bench-eval-'));
  const nixEvalJobs = await findExecutable('nix-eval-jobs', process.env.PATH ?? '');
  say(`eval: ${total} jobs per jobset, built-in evaluator with ${workers} workers, files in ${dir}`);
  const goals: Goal[] = [];
  try {
    /** A jobset file of this shape that no evaluation has seen: its `.drv` files are all new. */
    const fresh = async (name: string, shape: DagShape): Promise<string> => {
      const path = join(dir, `${name}-${randomUUID()}.nix`);
      await writeFile(path, dagExpression(shape, randomUUID()));
      return path;
    };
    const instantiate = async (file: string): Promise<number> => {
      const started = performance.now();
      const options = Object.entries(NIX_OPTIONS).flatMap(([name, value]) => ['--option', name, value]);
      await execFileAsync('nix-instantiate', [...options, file], { maxBuffer: 1 << 28 });
      return performance.now() - started;
    };
    const evaluate = async (file: string, evaluator: EvaluatorChoice): Promise<number> => {
      const started = performance.now();
      let jobs = 0;
      await evaluateJobs({
        source: { kind: 'file', path: file },
        evaluator,
        workers,
        nixOptions: NIX_OPTIONS,
        onJob: (line) => {
          if ('error' in line) throw new Error(`${line.attr} failed to evaluate: ${line.error}`);
          jobs++;
        },
      });
      if (jobs !== total) throw new Error(`${evaluator} found ${jobs} jobs, expected ${total}`);
      return performance.now() - started;
    };

    const shapes: Array<[string, DagShape]> = [
      [`layered DAG (${layers} × ${width})`, { layers, width }],
      [`independent jobs (${total})`, { layers: 1, width: total }],
    ];
    for (const [label, shape] of shapes) {
      say(`${label}:`);
      const a = await fresh('a', shape);
      const b = await fresh('b', shape);
      const instantiateNew = await instantiate(a);
      const oursNew = await evaluate(b, 'builtin');
      const instantiateExisting = await instantiate(b);
      const oursExisting = await evaluate(a, 'builtin');
      const line = (what: string, ms: number, baseline: number): string =>
        `  ${what.padEnd(44)} ${seconds(ms).padStart(8)}  ${(total / (ms / 1000)).toFixed(0).padStart(6)} jobs/s  ${(ms / baseline).toFixed(2)}× nix-instantiate`;
      say(line('nix-instantiate, new .drv files', instantiateNew, instantiateNew));
      say(line('built-in evaluator, new .drv files', oursNew, instantiateNew));
      say(line('nix-instantiate, existing .drv files', instantiateExisting, instantiateExisting));
      say(line('built-in evaluator, existing .drv files', oursExisting, instantiateExisting));
      goals.push({ name: `built-in evaluator vs nix-instantiate, ${label}, new .drv files`, measured: oursNew / instantiateNew, goal: GOAL, unit: '×' });
      goals.push({ name: `built-in evaluator vs nix-instantiate, ${label}, existing .drv files`, measured: oursExisting / instantiateExisting, goal: GOAL, unit: '×' });
      if (nixEvalJobs !== undefined) {
        const c = await fresh('c', shape);
        say(line('nix-eval-jobs, new .drv files', await evaluate(c, 'nix-eval-jobs'), instantiateNew));
        say(line('nix-eval-jobs, existing .drv files', await evaluate(c, 'nix-eval-jobs'), instantiateExisting));
      }
    }
    if (nixEvalJobs === undefined) say('nix-eval-jobs: not on PATH, not measured (harmonia-ci uses it when it is installed)');
    say('goals:');
    for (const goal of goals) say(`  ${describeGoal(goal)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
