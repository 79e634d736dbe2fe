/**
 * `harmonia-ci run <flake|file>`: one-shot CI of a local checkout on this machine. Starts what is
 * missing, runs the same workflows a webhook would (ref → eval → builds), shows progress as it
 * happens, and exits 0 only if every job succeeded.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger, routeTemporalLogs } from '../../lib/log.ts';
import { INTERRUPTED_EXIT_CODE, Interrupted, watchInterrupts } from '../interrupt.ts';
import { CliError } from '../errors.ts';
import { startLocalStack } from '../stack.ts';
import { startLocalWorkers } from '../local-workers.ts';
import { startLocalEval, watchEval, type RunSummary } from '../run-progress.ts';
import { sourceRevision } from '../source-revision.ts';
import { readEvalStatus } from '../../queries/evals.ts';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { evalWorkflowId } from '../../workflows/definitions.ts';
import { applyCacheFlags, cacheErrorsAsCliErrors, describeCache, withCacheOptions, type CacheFlags } from '../cache-options.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';
import { validateSource } from './validate.ts';

interface RunOptions extends CacheFlags {
  attr?: string[];
  again: boolean;
  dryRun: boolean;
  json: boolean;
  stateDir?: string;
  ui: boolean;
}

/** The environment `run` reads its configuration from: this process's, with its flags applied. */
function runEnvironment(options: RunOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  if (options.stateDir !== undefined) env.HARMONIA_CI_STATE_DIR = resolve(options.stateDir);
  applyCacheFlags(options, env);
  return env;
}

async function runOnce(target: string, options: RunOptions): Promise<number> {
  const env = runEnvironment(options);
  const config = await loadServerConfig({ env });
  // The terminal shows progress; logs appear only for errors unless a level is configured.
  const log = createLogger({ level: config.log.level === 'info' ? 'error' : config.log.level });
  // Progress goes to stderr so that `--json` leaves stdout to the summary.
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  await routeTemporalLogs(log);

  const path = resolve(target);
  say(`harmonia-ci run: ${path}`);
  // From here on Ctrl-C is ours (Temporal's runtime would otherwise take it and only stop the workers).
  const interrupts = watchInterrupts(say);
  const stack = await startLocalStack({ config, log, ui: options.ui, report: (line) => say(`  ${line}`) }).catch((error: unknown) => {
    interrupts.dispose();
    throw error;
  });
  let workers: Awaited<ReturnType<typeof startLocalWorkers>> | undefined;
  try {
    workers = await interrupts.race(startLocalWorkers({ stack, config, log }));
    say(`  workers    coordinator, evaluator, builder ${workers.host} (${config.builder.systems.join(', ')}), signer`);
    for (const line of workers.cache ? describeCache(workers.cache) : []) say(`  ${line}`);

    const pool = stack.database.pool;
    // The same source is the same commit: a re-run resumes (or shows) its eval instead of superseding it.
    const sha = options.again ? undefined : await sourceRevision(path, { exclude: [config.stateDir] });
    const { evalId, existed } = await interrupts.race(startLocalEval({ client: stack.client, pool, path, attrs: options.attr, ...(sha ? { sha } : {}) }));
    const link = stack.temporalUiUrl ? ` — ${stack.temporalUiUrl}/namespaces/${stack.namespace}/workflows/eval%2F${evalId}` : '';
    say(`  eval       ${evalId}${existed ? ` (${await interrupts.race(describeExisting(stack.client, pool, evalId))})` : ''}${link}`);
    const summary: RunSummary = await watchEval({ pool, client: stack.client, evalId, say, tty: process.stderr.isTTY, signal: interrupts.abortSignal });
    if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    const ok = summary.eval.status !== 'failed' && summary.jobs.every((job) => job.status === 'succeeded');
    return ok ? 0 : 1;
  } catch (error) {
    if (error instanceof Interrupted) return INTERRUPTED_EXIT_CODE;
    throw error;
  } finally {
    // Bounded by the interrupt's deadline: with Temporal gone these would wait for ever.
    await workers?.stop();
    await stack.stop();
    interrupts.dispose();
  }
}

/** What a re-run finds: an eval whose workflow still runs resumes; an ended one is shown (`--again` evaluates anew). */
async function describeExisting(client: Client, pool: Pool, evalId: string): Promise<string> {
  const open = await client.workflow
    .getHandle(evalWorkflowId(evalId))
    .describe()
    .then((description) => description.status.name === 'RUNNING', () => false);
  if (open) return `resuming eval ${evalId} of this source`;
  const status = (await readEvalStatus(pool, evalId))?.status;
  // An evaluation that failed or was cancelled says so; otherwise the results below tell the rest.
  const ended = status === 'failed' || status === 'cancelled' ? `, ${status}` : '';
  return `this source was already run as eval ${evalId}${ended}: its results follow; --again evaluates it anew`;
}

/** Registers `harmonia-ci run`. */
export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .argument('<flake-or-file>', 'a flake directory or reference, or a .nix file of jobs')
    .description('run CI once on a local checkout: evaluate, build what is missing, report; exit 0 only if every job succeeded')
    .option('-A, --attr <attr...>', 'attribute paths to evaluate (default: .harmonia-ci.toml attrs, else "checks")')
    .option('--json', 'print a JSON summary as the last line of stdout', false)
    .option('--again', 'evaluate again even if this exact source was run before (default: resume or show that eval)', false)
    .option('--dry-run', 'build nothing: check .harmonia-ci.toml, evaluate and list which jobs would be built and which are cached (as validate)', false)
    .option('--state-dir <dir>', 'where the embedded services keep their state (default .state)')
    .option('--no-ui', 'start the Temporal dev server without its Web UI');
  withCacheOptions(command).action((target: string, options: RunOptions) =>
    withSetupErrorsAsCliErrors(() =>
      cacheErrorsAsCliErrors(async () => {
        if (!target) throw new CliError('run needs a flake or a .nix file');
        // The check validate makes, with run's own flags (its cache, its state directory): no services start.
        if (options.dryRun) return validateSource(target, { attr: options.attr ?? [], json: options.json, env: runEnvironment(options) });
        process.exitCode = await runOnce(target, options);
      }),
    ),
  );
}
