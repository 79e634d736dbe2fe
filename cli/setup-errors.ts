/**
 * Setup errors (bad config, unreachable servers, a database that refuses) already name the
 * problem and the fix: commands turn them into CliErrors, shown without a stack. Kept apart from
 * the commands so a light command (`status`, `logs`) does not load the whole dev stack to get it.
 */
import { ApiSetupError } from '../api/errors.ts';
import { ConfigError, SecretFileError } from '../config/errors.ts';
import * as databaseErrors from '../db/errors.ts';
import { TemporalSetupError } from '../temporal/errors.ts';
import { CliError } from './errors.ts';

const SETUP_ERRORS = [ConfigError, SecretFileError, TemporalSetupError, ApiSetupError, ...Object.values(databaseErrors)];

/** Runs a command body, turning setup errors (bad config, unreachable servers) into CliErrors. */
export async function withSetupErrorsAsCliErrors(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (SETUP_ERRORS.some((type) => error instanceof type)) throw new CliError((error as Error).message);
    throw error;
  }
}
