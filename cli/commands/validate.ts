/**
 * `harmonia-ci validate [dir]`: what an eval of this source would do, without doing it. Checks the
 * repository's `.harmonia-ci.toml` (an error names the key and what it expects), evaluates the jobs
 * with the settings CI would use, and says which would be built and which are already in the local
 * store or a configured cache. Exit status 1 when the file is wrong or an attribute fails.
 * `harmonia-ci run --dry-run` is the same check (`validateSource`).
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { applyRepoConfig, parseRepoConfig, REPO_CONFIG_FILE } from '../../config/repo.ts';
import { loadServerConfig } from '../../config/server.ts';
import type { RepoConfig } from '../../config/types.ts';
import { EvaluationError, evaluateJobs, isEvalJobError, sourceFromArgument, type EvalJob, type EvalJobError } from '../../daemon/eval/index.ts';
import { DaemonNotRunningError } from '../../daemon/protocol/errors.ts';
import { resolveSocketPath } from '../../daemon/protocol/pool.ts';
import { planningLookupFor } from '../../workers/caches.ts';
import { createDaemonPool } from '../../workers/wiring.ts';
import { CliError } from '../errors.ts';

export interface ValidateOptions {
  attr: string[];
  json: boolean;
  config?: string | undefined;
  /** The environment the server configuration is read from (default: this process's). */
  env?: Record<string, string | undefined>;
}

/** One job as validate reports it. */
interface JobReport {
  attr: string;
  drvPath: string;
  system: string;
  status: 'cached' | 'to build';
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The repository's file at the root of a directory source, validated; as CI, none for a `.nix` file. */
async function readRepoConfig(target: string): Promise<{ config?: RepoConfig; file?: string }> {
  if (!(await stat(target).catch(() => undefined))?.isDirectory()) return {};
  const file = join(target, REPO_CONFIG_FILE);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return {};
  try {
    return { config: parseRepoConfig(text, file), file };
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

/**
 * Checks `.harmonia-ci.toml`, evaluates and reports each job as cached or to build, without
 * building; sets the exit status to 1 when an attribute failed (a wrong file throws CliError).
 */
export async function validateSource(target: string, options: ValidateOptions): Promise<void> {
  const path = resolve(target);
  const server = await loadServerConfig({ env: options.env ?? process.env, file: options.config });
  const repo = await readRepoConfig(path);
  const project = { attrs: options.attr, allowIfd: server.projects.allowIfd, evalTimeoutMs: server.limits.evalTimeout };
  const settings = repo.config ? applyRepoConfig(project, repo.config) : project;
  const jobs: EvalJob[] = [];
  const errors: EvalJobError[] = [];
  try {
    await evaluateJobs({
      source: await sourceFromArgument(path),
      ...(settings.attrs.length > 0 ? { attrs: settings.attrs } : {}),
      allowIfd: settings.allowIfd,
      timeoutMs: settings.evalTimeoutMs,
      onJob: (line) => {
        if (isEvalJobError(line)) errors.push(line);
        else jobs.push(line);
      },
    });
  } catch (error) {
    if (error instanceof EvaluationError) throw new CliError(error.message);
    throw error;
  }

  // Planned as CI plans: the local store, our cache, then the upstream caches.
  const daemon = createDaemonPool(server, resolveSocketPath());
  let available: Set<string>;
  try {
    const lookup = planningLookupFor(server, { daemon, warn: (message) => process.stderr.write(`warning: ${message}\n`) });
    available = await lookup.available(jobs.flatMap((job) => Object.values(job.outputs)));
  } catch (error) {
    if (error instanceof DaemonNotRunningError) throw new CliError(error.message);
    throw error;
  } finally {
    await daemon.close();
  }
  const reports: JobReport[] = jobs.map((job) => ({
    attr: job.attr,
    drvPath: job.drvPath,
    system: job.system,
    status: Object.values(job.outputs).every((output) => available.has(output)) ? 'cached' : 'to build',
  }));

  if (options.json) {
    process.stdout.write(`${JSON.stringify({ configFile: repo.file ?? null, jobs: reports, errors: errors.map(({ attr, error }) => ({ attr, error })) }, null, 2)}\n`);
  } else {
    if (repo.file) process.stdout.write(`${repo.file}: valid\n`);
    for (const report of reports) process.stdout.write(`${report.status.padEnd(9)} ${report.attr}  ${report.drvPath}\n`);
    for (const error of errors) process.stdout.write(`${'error'.padEnd(9)} ${error.attr}: ${error.error.split('\n').find((line) => line.trim()) ?? error.error}\n`);
    const toBuild = reports.filter((report) => report.status === 'to build').length;
    process.stdout.write(`${reports.length} job(s): ${toBuild} to build, ${reports.length - toBuild} cached; ${errors.length} attribute(s) failed to evaluate\n`);
  }
  if (errors.length > 0) process.exitCode = 1;
}

/** Registers `validate`. */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check .harmonia-ci.toml, evaluate the jobs and list which would be built and which are cached, without building')
    .argument('[dir]', 'the source: a flake directory or a .nix file', '.')
    .option('-A, --attr <attr>', 'attribute to evaluate, repeatable (default: as CI would, from .harmonia-ci.toml)', collect, [])
    .option('--json', 'print the report as JSON', false)
    .option('--config <file>', 'server configuration file, for its caches and limits (default: $HARMONIA_CI_CONFIG)')
    .action((dir: string, options: ValidateOptions) => validateSource(dir, options));
}
