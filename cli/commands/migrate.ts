/** `harmonia-ci migrate`: applies pending database migrations. */
import type { Command } from 'commander';
import { ConfigError, loadServerConfig } from '../../config/index.ts';
import {
  DatabaseUnreachableError,
  EmbeddedDatabaseError,
  MigrationChecksumError,
  MigrationFailedError,
  MigrationFileError,
  SchemaTooNewError,
} from '../../db/errors.ts';
import { openDatabase } from '../../db/open.ts';
import { redactDatabaseUrl } from '../../db/pool.ts';
import { CliError } from '../errors.ts';

const USER_ERRORS = [
  ConfigError,
  DatabaseUnreachableError,
  EmbeddedDatabaseError,
  MigrationChecksumError,
  MigrationFailedError,
  MigrationFileError,
  SchemaTooNewError,
];

/** Registers `migrate`. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations (to the embedded database when none is configured)')
    .option('--database-url <url>', 'PostgreSQL URL (default: database.url, $HARMONIA_CI_DATABASE_URL, $DATABASE_URL)')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action(async (options: { databaseUrl?: string; config?: string }) => {
      try {
        await runMigrate(options);
      } catch (error) {
        if (USER_ERRORS.some((type) => error instanceof type)) throw new CliError((error as Error).message);
        throw error;
      }
    });
}

async function runMigrate(options: { databaseUrl?: string; config?: string }): Promise<void> {
  const config = await loadServerConfig({ ...(options.config ? { file: options.config } : {}), env: process.env });
  const url = options.databaseUrl ?? config.database.url;
  const database = await openDatabase({
    ...(url === undefined ? {} : { url }),
    stateDir: config.stateDir,
    migrate: true,
    log: { info: (fields) => process.stdout.write(`applied ${(fields as { file: string }).file}\n`) },
  });
  try {
    const where = database.embedded ? `embedded database in ${config.stateDir}` : redactDatabaseUrl(database.url);
    const result = database.migration;
    const verb = result && result.applied.length > 0 ? 'now at' : 'already at';
    process.stdout.write(`${where}: schema ${verb} version ${result?.version ?? '?'}\n`);
  } finally {
    await database.close();
  }
}
