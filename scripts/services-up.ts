/**
 * Starts the test services for manual work (the Temporal dev server with its Web UI,
 * SeaweedFS S3, a private nix-daemon; checks PostgreSQL), prints the environment to
 * export, and keeps them up until Ctrl-C.
 *
 *   node --import tsx scripts/services-up.ts        then paste the printed exports in another shell
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyTestEnvironmentDefaults, startTestServices } from '../test/helpers/services.ts';

const log = {
  info: (message: string) => process.stderr.write(`services: ${message}\n`),
  warn: (message: string) => process.stderr.write(`services: ${message}\n`),
  debug: () => undefined,
};

/** Single-quotes a value for POSIX shells. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

async function main(): Promise<void> {
  const defaults = applyTestEnvironmentDefaults();
  const dir = await mkdtemp(join(tmpdir(), 'harmonia-ci-services-'));
  let services;
  try {
    services = await startTestServices({ dir, log, databaseUrl: process.env.DATABASE_URL, temporalUi: true });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  for (const [name, value] of Object.entries({ ...defaults, ...services.env })) process.stdout.write(`export ${name}=${shellQuote(value)}\n`);
  process.stderr.write('services: up; press Ctrl-C to stop them\n');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(name, () => resolve(name));
  });
  process.stderr.write(`services: ${signal}, stopping\n`);
  await services.stop();
  await rm(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  process.stderr.write(`services-up: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
