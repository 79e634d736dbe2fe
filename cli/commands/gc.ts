/**
 * `harmonia-ci gc`: retention for the database and the binary cache. Evals older than the retention
 * leave the database, then cache objects that no remaining eval reaches and older than the grace
 * period leave the storage (cache/gc.ts says exactly what is kept).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { collectGarbage } from '../../cache/gc.ts';
import { loadServerConfig } from '../../config/server.ts';
import { DURATION_EXPECTATION, parseDuration } from '../../config/units.ts';
import { openDatabase } from '../../db/open.ts';
import { CliError } from '../errors.ts';
import { applyCacheFlags, cacheErrorsAsCliErrors, openConfiguredCache } from '../cache-options.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';

interface GcOptions {
  cache?: string;
  config?: string;
  stateDir?: string;
  retention: string;
  logRetention: string;
  grace: string;
  dryRun: boolean;
  json: boolean;
}

function durationOption(value: string, flag: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new CliError(`${flag} expects ${DURATION_EXPECTATION}, got "${value}"`);
  return ms;
}

const mebibytes = (bytes: number): string => `${(bytes / (1 << 20)).toFixed(1)} MiB`;

async function runGc(options: GcOptions): Promise<void> {
  const retentionMs = durationOption(options.retention, '--retention');
  const logRetentionMs = durationOption(options.logRetention, '--log-retention');
  const graceMs = durationOption(options.grace, '--grace');
  if (graceMs < 3600_000) throw new CliError('--grace below 1h would race with uploads in progress: give at least "1h"');

  const env: Record<string, string | undefined> = { ...process.env };
  if (options.stateDir !== undefined) env.HARMONIA_CI_STATE_DIR = resolve(options.stateDir);
  applyCacheFlags(options, env);
  const config = await loadServerConfig({ env, file: options.config });
  // Expiring months of evals is one large DELETE: no statement limit for this one-off batch.
  const database = await openDatabase({ url: config.database.url, stateDir: config.stateDir, migrate: false, pool: { statementTimeoutMs: 0 } });
  const backend = await openConfiguredCache(config);
  try {
    const report = await collectGarbage({ pool: database.pool, backend, retentionMs, logRetentionMs, graceMs, dryRun: options.dryRun });
    if (options.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    const verb = options.dryRun ? 'would delete' : 'deleted';
    const { narinfo, listing, nar, log } = report.deleted;
    process.stdout.write(
      `${verb} ${report.evalsDeleted} eval(s) from the database and ${narinfo} narinfo, ${listing} listing, ${nar} NAR and ${log} log object(s) ` +
        `(${mebibytes(report.bytesFreed)}) from ${backend.description}; kept ${report.kept} object(s)\n`,
    );
  } finally {
    await backend.close();
    await database.close();
  }
}

/** Registers `harmonia-ci gc`. */
export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('delete evals past their retention, then cache objects no remaining eval reaches')
    .option('--cache <dir|s3-url>', 'the cache (default cache.url, else <state-dir>/cache)')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--state-dir <dir>', 'state directory (the embedded database when no database.url is set)')
    .option('--retention <duration>', 'keep evals this long', '90d')
    .option('--log-retention <duration>', 'keep build logs of evals this long', '30d')
    .option('--grace <duration>', 'never delete objects younger than this (uploads whose narinfo is still coming)', '24h')
    .option('--dry-run', 'report what would be deleted and change nothing', false)
    .option('--json', 'print the report as JSON', false)
    .action((options: GcOptions) => withSetupErrorsAsCliErrors(() => cacheErrorsAsCliErrors(() => runGc(options))));
}
