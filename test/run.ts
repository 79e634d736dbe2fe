/**
 * The test runner: starts the real services (Temporal dev server, SeaweedFS S3, a private
 * nix-daemon; checks PostgreSQL), exports their addresses, runs Node's test runner on the
 * given files (default: every test/**\/*.test.ts) and always stops what it started.
 *
 *   node --import tsx test/run.ts [--test-name-pattern=…] [files…]
 *
 * Arguments starting with `--` go to `node --test`. HARMONIA_TEST_VERBOSE=1 shows server output;
 * HARMONIA_TEST_CONCURRENCY sets how many files run at once (default 2); files start longest-first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../lib/tools.ts';
import { applyTestEnvironmentDefaults, startTestServices, type TestServices } from './helpers/services.ts';

const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** Every *.test.ts under test/, sorted, relative to the project root. */
async function findTestFiles(): Promise<string[]> {
  const testDir = join(PROJECT_ROOT, 'test');
  const entries = await readdir(testDir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.test.ts'))
    .map((entry) => relative(PROJECT_ROOT, join(entry.parentPath, entry.name)))
    .filter((path) => !path.split('/').includes('node_modules'))
    .sort();
}

/** Seconds a file took in a recent full run; files not listed count as this many. */
const UNKNOWN_FILE_SECONDS = 10;

/**
 * The files longest-first, by `test/file-times.json` (written by a run with
 * HARMONIA_TEST_TIMES_FILE=test/file-times.json): with several files at once, starting the long
 * ones first keeps one long file from running alone at the end.
 */
async function longestFirst(files: string[]): Promise<string[]> {
  let times: Record<string, number> = {};
  try {
    times = JSON.parse(await readFile(join(PROJECT_ROOT, 'test/file-times.json'), 'utf8')) as Record<string, number>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const seconds = (file: string): number => times[file] ?? UNKNOWN_FILE_SECONDS;
  return [...files].sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b));
}

/** How many test files run at once: HARMONIA_TEST_CONCURRENCY, default 2 (the machine's cores in CI). */
function concurrency(): number {
  const value = process.env.HARMONIA_TEST_CONCURRENCY ?? '2';
  if (!/^[1-9]\d*$/.test(value)) throw new Error(`HARMONIA_TEST_CONCURRENCY=${value} is not a positive whole number; unset it for the default of 2`);
  return Number(value);
}

const log = {
  info: (message: string) => process.stdout.write(`services: ${message}\n`),
  warn: (message: string) => process.stderr.write(`services: ${message}\n`),
  debug: process.env.HARMONIA_TEST_VERBOSE ? (message: string) => process.stderr.write(`services: ${message}\n`) : () => undefined,
};

async function main(): Promise<number> {
  applyTestEnvironmentDefaults();
  const args = process.argv.slice(2);
  const testOptions = args.filter((arg) => arg.startsWith('--'));
  const requested = args.filter((arg) => !arg.startsWith('--'));
  const files = await longestFirst(requested.length > 0 ? requested : await findTestFiles());
  if (files.length === 0) {
    process.stderr.write('test/run.ts: no test files found (looked for test/**/*.test.ts)\n');
    return 1;
  }

  let services: TestServices | undefined;
  let testProcess: ChildProcess | undefined;
  let interruptedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interruptedBy ??= signal;
    testProcess?.kill(signal);
  };
  for (const signal of Object.keys(SIGNAL_EXIT_CODES) as NodeJS.Signals[]) process.on(signal, onSignal);

  const dir = await mkdtemp(join(tmpdir(), 'harmonia-ci-test-'));
  try {
    services = await startTestServices({ dir, log, databaseUrl: process.env.DATABASE_URL });
    if (interruptedBy) return SIGNAL_EXIT_CODES[interruptedBy] ?? 1;

    const env = { ...process.env, ...services.env };
    // A test that hangs fails after five minutes instead of holding the whole run.
    const nodeArgs = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(PROJECT_ROOT, 'test/helpers/file-times-reporter.mjs')}`, '--test-reporter-destination=stdout', `--test-concurrency=${concurrency()}`, '--test-timeout=300000', ...testOptions, ...files];
    const child = spawn(process.execPath, nodeArgs, { cwd: PROJECT_ROOT, env, stdio: 'inherit' });
    testProcess = child;
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    if (interruptedBy) return SIGNAL_EXIT_CODES[interruptedBy] ?? 1;
    if (signal) return SIGNAL_EXIT_CODES[signal] ?? 1;
    return code ?? 1;
  } catch (error) {
    process.stderr.write(`test/run.ts: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    const t0 = performance.now();
    await services?.stop();
    await rm(dir, { recursive: true, force: true });
    if (services) log.info(`stopped in ${Math.round(performance.now() - t0)} ms`);
  }
}

process.exitCode = await main();
