/** Entry point of the `harmonia-ci` command: each file in cli/commands registers its subcommands. */
import { Command } from 'commander';
import { registerRun } from './commands/run.ts';
import { registerCache } from './commands/cache.ts';
import { registerGc } from './commands/gc.ts';
import { CliError } from './errors.ts';
import { registerNar } from './commands/nar.ts';
import { registerKeys } from './commands/keys.ts';
import { registerStore } from './commands/store.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerEvalJobs } from './commands/eval-jobs.ts';
import { registerDev } from './commands/dev.ts';
import { registerApi } from './commands/api.ts';
import { registerWorker } from './commands/worker.ts';
import { registerEval } from './commands/eval.ts';
import { registerStatus } from './commands/status.ts';
import { registerLogs } from './commands/logs.ts';
import { registerCancel } from './commands/cancel.ts';
import { registerRebuild } from './commands/rebuild.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerDrain } from './commands/drain.ts';
import { registerProjects } from './commands/projects.ts';
import { registerCodecServer } from './commands/codec-server.ts';
import { registerValidate } from './commands/validate.ts';
import { registerDeployAgent } from './commands/deploy-agent.ts';
import { registerTokens } from './commands/tokens.ts';
import { registerLogin } from './commands/login.ts';

const program = new Command('harmonia-ci')
  .description('Nix continuous integration on durable Temporal workflows')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

const registrations: Array<(program: Command) => void> = [
  registerNar,
  registerKeys,
  registerStore,
  registerMigrate,
  registerEvalJobs,
  registerDev,
  registerApi,
  registerWorker,
  registerEval,
  registerStatus,
  registerLogs,
  registerCancel,
  registerRebuild,
  registerNodes,
  registerDrain,
  registerProjects,
  registerRun,
  registerCache,
  registerGc,
  registerCodecServer,
  registerValidate,
  registerDeployAgent,
  registerTokens,
  registerLogin,
];
for (const register of registrations) register(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CliError) {
    process.stderr.write(`harmonia-ci: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`harmonia-ci: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
