/** Shared pieces of the evaluation tests: the real Nix as oracle, throwaway sources, process checks. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { evaluateJobs } from '../../daemon/eval/index.ts';
import type { EvalJob, EvalJobError, EvalJobLine, EvaluateJobsOptions } from '../../daemon/eval/index.ts';

const run = promisify(execFile);

/** No network here: substituters off; root without a nixbld group. */
export const OFFLINE_NIX_OPTIONS = { substituters: '', 'build-users-group': '' };

const NIX_ARGS = ['--extra-experimental-features', 'nix-command flakes', '--option', 'substituters', '', '--option', 'build-users-group', ''];

/** Runs the real `nix` with the offline options and returns its stdout. */
export async function nix(...args: string[]): Promise<string> {
  const { stdout } = await run('nix', [...NIX_ARGS, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Runs a Nix command-line tool (nix-instantiate, nix-store, git) and returns its stdout. */
export async function tool(command: string, args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** A random token that makes derivations and process command lines unique to one test. */
export function nonce(): string {
  return randomBytes(6).toString('hex');
}

/** A fresh directory holding `files` (name → contents). */
export async function tempSource(files: Record<string, string>, label = 'src'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `harmonia-eval-${label}-`));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** A Nix expression of a trivial derivation named `name` for x86_64-linux, with extra attributes. */
export function drvExpr(name: string, extra = ''): string {
  return `builtins.derivation { name = "${name}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ${name} > $out" ]; ${extra} }`;
}

/** Everything an evaluation emitted, split into jobs and errors, keyed by `attr`. */
export interface Collected {
  lines: EvalJobLine[];
  jobs: Map<string, EvalJob>;
  errors: Map<string, EvalJobError>;
}

/** Runs evaluateJobs offline with the built-in evaluator and collects its lines. */
export async function collect(options: Omit<EvaluateJobsOptions, 'onJob'>): Promise<Collected> {
  const lines: EvalJobLine[] = [];
  await evaluateJobs({ nixOptions: OFFLINE_NIX_OPTIONS, evaluator: 'builtin', ...options, onJob: (line) => void lines.push(line) });
  const jobs = new Map<string, EvalJob>();
  const errors = new Map<string, EvalJobError>();
  for (const line of lines) {
    if ('error' in line) errors.set(line.attr, line);
    else jobs.set(line.attr, line);
  }
  return { lines, jobs, errors };
}

/** Pids and command lines of the running (non-zombie) processes whose command line contains `needle`. */
export async function processesMatching(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      if (cmdline.includes(needle)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

/** Resolves once `check` returns true, polling every 50 ms; rejects after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
