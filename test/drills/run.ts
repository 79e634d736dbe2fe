/**
 * Fault drills: `npm run drills [-- --layers 10 --width 30]`. Each drill runs a salted layered DAG
 * (one job per derivation of the top layer, one derivation failing on purpose with dependents)
 * through `harmonia-ci run` against the same real services the tests use, injects one fault,
 * and compares with a fault-free run of the same shape: final job statuses equal, each
 * derivation built successfully at most once, no narinfo without its NAR, no eval left open, and
 * the time to finish. It prints one row per drill.
 *
 * Drills so far: the whole `run` SIGKILLed and run again; a second push to the same ref 1 s after
 * the first, with a DAG overlapping by 90 % (the race that used to leave an eval waiting for ever).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { readRunSummary, startLocalEval, waitForEvalWorkflow, type RunSummary } from '../../cli/run-progress.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { assertEveryNarInfoHasItsNar } from '../cache/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { applyTestEnvironmentDefaults, startTestServices } from '../helpers/services.ts';
import { startPipeline, waitUntil } from '../pipeline/harness.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');

interface Shape {
  layers: number;
  width: number;
}

/** Where one drill runs: its own Temporal namespace, database, state, cache and build record. */
interface Arena {
  dir: string;
  db: TestDatabase;
  env: Record<string, string>;
  /** Each successful build appends its name here: a derivation built twice shows twice. */
  builtLog: string;
}

interface Outcome {
  statuses: Record<string, string>;
  seconds: number;
  builtTwice: string[];
  narinfosWithoutNar: number;
  /** Narinfos checked: a run that built something must have published it. */
  narinfos: number;
  openEvals: number;
}

/** A layered DAG as a jobs file in its own directory; `changed` derivations of the top layer differ (a new push). */
async function writeDag(dir: string, shape: Shape, salt: string, builtLog: string, changed = 0): Promise<string> {
  const name = (layer: number, i: number): string => `d${layer}_${i}`;
  const lines: string[] = [];
  for (let layer = 0; layer < shape.layers; layer++) {
    for (let i = 0; i < shape.width; i++) {
      const deps = layer === 0 ? [] : [name(layer - 1, i), name(layer - 1, (i + 1) % shape.width)];
      // One derivation in the middle fails on purpose; its dependents become dep-failed.
      const fails = layer === Math.floor(shape.layers / 2) && i === 0;
      const variant = layer === shape.layers - 1 && i < changed ? '-changed' : '';
      const script = [
        ...deps.map((dep) => `read x < $${dep}`),
        fails ? 'echo failing on purpose >&2; exit 1' : '',
        `echo ${name(layer, i)}${variant} > $out`,
        `echo ${name(layer, i)}${variant} >> ${builtLog}`,
      ].filter(Boolean).join('; ');
      const inputs = deps.map((dep) => `${dep} = jobs.${dep};`).join(' ');
      lines.push(`  ${name(layer, i)} = builtins.derivation { name = "${name(layer, i)}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; salt = "${salt}${variant}"; ${inputs} };`);
    }
  }
  const top = Array.from({ length: shape.width }, (_, i) => `${name(shape.layers - 1, i)} = jobs.${name(shape.layers - 1, i)};`).join(' ');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'jobs.nix');
  await writeFile(file, `let jobs = {\n${lines.join('\n')}\n}; in { ${top} }\n`);
  return file;
}

async function newArena(root: string, label: string, temporalAddress: string): Promise<Arena> {
  const dir = await mkdtemp(join(root, `${label}-`));
  const namespace = `drill-${label}-${Math.random().toString(16).slice(2, 8)}`;
  const connection = await Connection.connect({ address: temporalAddress });
  await ensureNamespace(connection, namespace);
  await ensureSearchAttributes(connection, namespace);
  await connection.close();
  const db = await createTestDatabase();
  const builtLog = join(dir, 'built');
  await appendFile(builtLog, '');
  const env = {
    HARMONIA_CI_TEMPORAL_NAMESPACE: namespace,
    DATABASE_URL: db.url,
    HARMONIA_CI_STATE_DIR: join(dir, 'state'),
    HARMONIA_CI_CACHE_URL: join(dir, 'cache'),
    HARMONIA_CI_LIMITS_BUILDER_HEARTBEAT_TIMEOUT: '10s',
    HARMONIA_CI_LOG_LEVEL: 'error',
  };
  return { dir, db, env, builtLog };
}

function startRun(arena: Arena, file: string, extra: string[] = []): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string }> } {
  const child = spawn(process.execPath, [CLI, 'run', file, '--no-ui', '--json', ...extra], {
    env: { ...process.env, ...arena.env },
    stdio: ['ignore', 'pipe', 'ignore'],
    detached: true,
  });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const done = new Promise<{ code: number | null; stdout: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout })));
  return { child, done };
}

async function succeededBuilds(arena: Arena): Promise<number> {
  const { rows } = await arena.db.pool.query<{ n: string }>("SELECT count(*) AS n FROM build_jobs WHERE status = 'succeeded'");
  return Number(rows[0]!.n);
}

async function outcome(arena: { builtLog: string; db: TestDatabase }, summaryOrStdout: RunSummary | string, seconds: number, cacheDir: string): Promise<Outcome> {
  const summary = typeof summaryOrStdout === 'string' ? (JSON.parse(summaryOrStdout.trim().split('\n').at(-1)!) as RunSummary) : summaryOrStdout;
  const statuses = Object.fromEntries(summary.jobs.map((job) => [job.attr, job.status]));
  const built = (await readFile(arena.builtLog, 'utf8')).split('\n').filter(Boolean);
  const seen = new Set<string>();
  const builtTwice = built.filter((name) => (seen.has(name) ? true : (seen.add(name), false)));
  const { rows } = await arena.db.pool.query<{ n: string }>("SELECT count(*) AS n FROM evaluations WHERE status IN ('queued', 'running')");
  return {
    statuses,
    seconds,
    builtTwice,
    ...(await checkNarInfos(cacheDir)),
    openEvals: Number(rows[0]!.n),
  };
}

/** The narinfos in the cache, and whether one lacks its NAR (the helper throws on the first such). */
async function checkNarInfos(cacheDir: string): Promise<{ narinfos: number; narinfosWithoutNar: number }> {
  try {
    return { narinfos: await assertEveryNarInfoHasItsNar(new LocalDirectoryBackend(cacheDir)), narinfosWithoutNar: 0 };
  } catch {
    return { narinfos: 0, narinfosWithoutNar: 1 };
  }
}

type Drill = (arena: Arena, shape: Shape) => Promise<Outcome>;

const baseline: Drill = async (arena, shape) => {
  const file = await writeDag(join(arena.dir, 'source'), shape, arena.dir, arena.builtLog);
  const started = Date.now();
  const { stdout } = await startRun(arena, file).done;
  return outcome(arena, stdout, (Date.now() - started) / 1000, join(arena.dir, 'cache'));
};

const runKilled: Drill = async (arena, shape) => {
  const file = await writeDag(join(arena.dir, 'source'), shape, arena.dir, arena.builtLog);
  const started = Date.now();
  const first = startRun(arena, file);
  const total = shape.layers * shape.width;
  await waitUntil(async () => (await succeededBuilds(arena)) >= Math.floor(total / 3), 'a third of the builds succeeded', 300_000);
  process.kill(-first.child.pid!, 'SIGKILL');
  await first.done;
  const { stdout } = await startRun(arena, file).done;
  return outcome(arena, stdout, (Date.now() - started) / 1000, join(arena.dir, 'cache'));
};

/** Two pushes to one ref 1 s apart, through one set of workers (as a forge would send them). */
const overlappingPushes: Drill = async (arena, shape) => {
  const pipeline = await startPipeline({ env: { HARMONIA_CI_LIMITS_BUILDER_HEARTBEAT_TIMEOUT: '10s' } });
  try {
    const source = join(pipeline.dir, 'source');
    const record = { builtLog: arena.builtLog, db: pipeline.db };
    const file = await writeDag(source, shape, arena.dir, arena.builtLog);
    const started = Date.now();
    const first = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: file, sha: 'a'.repeat(40) });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // 10 % of the top layer changes: a new commit whose DAG overlaps the first by 90 %.
    await writeDag(source, shape, arena.dir, arena.builtLog, Math.max(1, Math.round(shape.width / 10)));
    const second = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: file, sha: 'b'.repeat(40) });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.evalId, 600_000);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, second.evalId, 600_000);
    const summary = await readRunSummary(pipeline.db.pool, second.evalId);
    return await outcome(record, summary, (Date.now() - started) / 1000, join(pipeline.dir, 'state', 'cache'));
  } finally {
    await pipeline.close();
  }
};

/** Job statuses with the changed jobs' names made equal, so an overlapping push compares with the baseline. */
function comparable(statuses: Record<string, string>): string {
  return JSON.stringify(Object.entries(statuses).sort(([a], [b]) => a.localeCompare(b)));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { layers: { type: 'string', default: '10' }, width: { type: 'string', default: '30' } } });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  applyTestEnvironmentDefaults();
  const root = await mkdtemp(join(tmpdir(), 'harmonia-drills-'));
  const log = { info: (m: string) => process.stderr.write(`services: ${m}\n`), warn: (m: string) => process.stderr.write(`services: ${m}\n`), debug: () => undefined };
  const services = await startTestServices({ dir: join(root, 'services'), log });
  Object.assign(process.env, services.env);
  const rows: string[] = [];
  let failures = 0;
  try {
    process.stderr.write(`drills: ${shape.layers} layers × ${shape.width} = ${shape.layers * shape.width} derivations each\n`);
    const reference = await baseline(await newArena(root, 'baseline', services.env.TEMPORAL_ADDRESS!), shape);
    rows.push(row('no fault (baseline)', reference, reference));
    for (const [name, drill] of [
      ['whole run SIGKILLed at 1/3, run again', runKilled],
      ['second push 1 s later, 90 % overlap', overlappingPushes],
    ] as const) {
      process.stderr.write(`drills: ${name} …\n`);
      const result = await drill(await newArena(root, name.split(' ')[0]!, services.env.TEMPORAL_ADDRESS!), shape);
      const line = row(name, result, reference);
      if (!line.includes('nothing lost')) failures++;
      rows.push(line);
    }
  } finally {
    await services.stop();
    await rm(root, { recursive: true, force: true });
  }
  process.stdout.write(`\n| drill | jobs as without the fault | built twice | narinfo without NAR | evals left open | time (s) | verdict |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`);
  if (failures > 0) process.exitCode = 1;
}

function row(name: string, result: Outcome, reference: Outcome): string {
  const same = comparable(result.statuses) === comparable(reference.statuses);
  const published = result.narinfos > 0 && result.narinfosWithoutNar === 0;
  const ok = same && result.builtTwice.length === 0 && published && result.openEvals === 0;
  return `| ${name} | ${same ? 'yes' : 'NO'} | ${result.builtTwice.length} | ${result.narinfosWithoutNar} of ${result.narinfos} | ${result.openEvals} | ${result.seconds.toFixed(1)} vs ${reference.seconds.toFixed(1)} | ${ok ? 'nothing lost' : 'LOST WORK'} |`;
}

await main();
