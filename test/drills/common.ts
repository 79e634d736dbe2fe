/**
 * What every drill shares: the salted layered DAG, an arena (namespace, database, state, cache and
 * build record of its own), `harmonia-ci run` as a child process, and the outcome a drill is judged
 * by (final job statuses, derivations built twice, narinfos without their NAR, evals left open,
 * time to finish).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import type { CacheBackend } from '../../cache/types.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import type { RunSummary } from '../../cli/run-progress.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { ensureNamespace } from '../../temporal/namespace.ts';
import { ensureSearchAttributes } from '../../temporal/search-attributes.ts';
import { assertEveryNarInfoHasItsNar } from '../cache/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

export const CLI = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');

export interface Shape {
  layers: number;
  width: number;
}

/** What a drill is given: where to work, the DAG's shape, and the runner's services (TEMPORAL_ADDRESS, S3, nix-daemon). */
export interface DrillContext {
  root: string;
  shape: Shape;
  services: Record<string, string>;
  /** One line of progress on stderr. */
  say(message: string): void;
}

/** Where one drill runs: its own Temporal namespace, database, state, cache and build record. */
export interface Arena {
  dir: string;
  db: TestDatabase;
  namespace: string;
  env: Record<string, string>;
  /** Each successful build appends its name here: a derivation built twice shows twice. */
  builtLog: string;
}

export interface Outcome {
  statuses: Record<string, string>;
  seconds: number;
  builtTwice: string[];
  narinfosWithoutNar: number;
  /** Narinfos checked: a run that built something must have published it. */
  narinfos: number;
  openEvals: number;
  /** What the drill saw of the fault, for the table (e.g. "3 builders killed"). */
  note?: string;
}

export type Drill = (context: DrillContext) => Promise<Outcome>;

export const dagName = (layer: number, i: number): string => `d${layer}_${i}`;

/**
 * A layered DAG as a Nix expression `let jobs = { … }; in { <top layer> }`: each derivation reads
 * two of the layer below, one in the middle fails on purpose (its dependents become dep-failed),
 * every successful build appends its name to `builtLog`. `changed` derivations of the top layer
 * differ (a new push). `system` is a Nix expression (a flake has no builtins.currentSystem).
 */
export function dagExpression(shape: Shape, salt: string, builtLog: string, options: { changed?: number; system?: string } = {}): string {
  const changed = options.changed ?? 0;
  const system = options.system ?? 'builtins.currentSystem';
  const lines: string[] = [];
  for (let layer = 0; layer < shape.layers; layer++) {
    for (let i = 0; i < shape.width; i++) {
      const deps = layer === 0 ? [] : [dagName(layer - 1, i), dagName(layer - 1, (i + 1) % shape.width)];
      const fails = layer === Math.floor(shape.layers / 2) && i === 0;
      const variant = layer === shape.layers - 1 && i < changed ? '-changed' : '';
      const script = [
        ...deps.map((dep) => `read x < $${dep}`),
        fails ? 'echo failing on purpose >&2; exit 1' : '',
        `echo ${dagName(layer, i)}${variant} > $out`,
        `echo ${dagName(layer, i)}${variant} >> ${builtLog}`,
      ].filter(Boolean).join('; ');
      const inputs = deps.map((dep) => `${dep} = jobs.${dep};`).join(' ');
      lines.push(`  ${dagName(layer, i)} = builtins.derivation { name = "${dagName(layer, i)}"; system = ${system}; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; salt = "${salt}${variant}"; ${inputs} };`);
    }
  }
  const top = Array.from({ length: shape.width }, (_, i) => `${dagName(shape.layers - 1, i)} = jobs.${dagName(shape.layers - 1, i)};`).join(' ');
  return `let jobs = {\n${lines.join('\n')}\n}; in { ${top} }`;
}

/** The DAG as a jobs file `jobs.nix` in `dir`. */
export async function writeDag(dir: string, shape: Shape, salt: string, builtLog: string, changed = 0): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'jobs.nix');
  await writeFile(file, `${dagExpression(shape, salt, builtLog, { changed })}\n`);
  return file;
}

export async function newArena(context: DrillContext, label: string): Promise<Arena> {
  const dir = await mkdtemp(join(context.root, `${label}-`));
  const namespace = `drill-${label}-${Math.random().toString(16).slice(2, 8)}`;
  const connection = await Connection.connect({ address: context.services.TEMPORAL_ADDRESS! });
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
  return { dir, db, namespace, env, builtLog };
}

/** `harmonia-ci run <file> --no-ui --json` in its own process group (so a drill can kill all of it). */
export function startRun(arena: Arena, file: string, extra: string[] = []): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string }> } {
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

export async function succeededBuilds(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM build_jobs WHERE status = 'succeeded'");
  return Number(rows[0]!.n);
}

/** Judges a finished drill: `summary` is a run's summary, or `run --json`'s output whose last line is one. */
export async function outcome(
  arena: { builtLog: string; db: { pool: Pool } },
  summaryOrStdout: RunSummary | string,
  seconds: number,
  cache: string | CacheBackend,
): Promise<Outcome> {
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
    ...(await checkNarInfos(typeof cache === 'string' ? new LocalDirectoryBackend(cache) : cache)),
    openEvals: Number(rows[0]!.n),
    // An eval that ended in error explains a row of differing statuses.
    ...(summary.eval.error ? { note: `eval ${summary.eval.status}: ${summary.eval.error.split('\n')[0]}` } : {}),
  };
}

/** The narinfos in the cache, and whether one lacks its NAR (the helper throws on the first such). */
async function checkNarInfos(cache: CacheBackend): Promise<{ narinfos: number; narinfosWithoutNar: number }> {
  try {
    return { narinfos: await assertEveryNarInfoHasItsNar(cache), narinfosWithoutNar: 0 };
  } catch {
    return { narinfos: 0, narinfosWithoutNar: 1 };
  }
}

/** Job statuses in a stable order, so a drill's compare with the baseline's. */
export function comparable(statuses: Record<string, string>): string {
  return JSON.stringify(Object.entries(statuses).sort(([a], [b]) => a.localeCompare(b)));
}

export function row(name: string, result: Outcome, reference: Outcome): string {
  const same = comparable(result.statuses) === comparable(reference.statuses);
  const published = result.narinfos > 0 && result.narinfosWithoutNar === 0;
  const ok = same && result.builtTwice.length === 0 && published && result.openEvals === 0;
  const label = result.note ? `${name} (${result.note})` : name;
  return `| ${label} | ${same ? 'yes' : 'NO'} | ${result.builtTwice.length} | ${result.narinfosWithoutNar} of ${result.narinfos} | ${result.openEvals} | ${result.seconds.toFixed(1)} vs ${reference.seconds.toFixed(1)} | ${ok ? 'nothing lost' : 'LOST WORK'} |`;
}
