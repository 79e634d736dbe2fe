/** Entry point of the `harmonia-ci` command: each file in cli/commands registers its subcommands. */
import { Command } from 'commander';
import { CliError } from './errors.ts';

const program = new Command('harmonia-ci')
  .description('Nix continuous integration on durable Temporal workflows')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

type Register = (program: Command) => void;

/**
 * Each command's names and the module that registers it, in the order `--help` lists them. Only
 * the module of the command being run is loaded: `status` or `logs` need not load the dev stack.
 */
const COMMANDS: Array<{ names: string[]; load: () => Promise<Register> }> = [
  { names: ['nar'], load: async () => (await import('./commands/nar.ts')).registerNar },
  { names: ['keys'], load: async () => (await import('./commands/keys.ts')).registerKeys },
  { names: ['store'], load: async () => (await import('./commands/store.ts')).registerStore },
  { names: ['migrate'], load: async () => (await import('./commands/migrate.ts')).registerMigrate },
  { names: ['eval-jobs'], load: async () => (await import('./commands/eval-jobs.ts')).registerEvalJobs },
  { names: ['dev'], load: async () => (await import('./commands/dev.ts')).registerDev },
  { names: ['api'], load: async () => (await import('./commands/api.ts')).registerApi },
  { names: ['worker'], load: async () => (await import('./commands/worker.ts')).registerWorker },
  { names: ['eval', 're-evaluate'], load: async () => (await import('./commands/eval.ts')).registerEval },
  { names: ['status'], load: async () => (await import('./commands/status.ts')).registerStatus },
  { names: ['logs'], load: async () => (await import('./commands/logs.ts')).registerLogs },
  { names: ['cancel'], load: async () => (await import('./commands/cancel.ts')).registerCancel },
  { names: ['rebuild', 'rebuild-failed'], load: async () => (await import('./commands/rebuild.ts')).registerRebuild },
  { names: ['nodes'], load: async () => (await import('./commands/nodes.ts')).registerNodes },
  { names: ['drain'], load: async () => (await import('./commands/drain.ts')).registerDrain },
  { names: ['projects'], load: async () => (await import('./commands/projects.ts')).registerProjects },
  { names: ['run'], load: async () => (await import('./commands/run.ts')).registerRun },
  { names: ['cache'], load: async () => (await import('./commands/cache.ts')).registerCache },
  { names: ['gc'], load: async () => (await import('./commands/gc.ts')).registerGc },
  { names: ['codec-server'], load: async () => (await import('./commands/codec-server.ts')).registerCodecServer },
  { names: ['validate'], load: async () => (await import('./commands/validate.ts')).registerValidate },
  { names: ['deploy-agent'], load: async () => (await import('./commands/deploy-agent.ts')).registerDeployAgent },
  { names: ['tokens'], load: async () => (await import('./commands/tokens.ts')).registerTokens },
  { names: ['login', 'logout'], load: async () => (await import('./commands/login.ts')).registerLogin },
];

// The first argument names the command; help, no argument or an unknown name loads them all.
const named = process.argv[2];
const wanted = COMMANDS.filter((command) => named !== undefined && command.names.includes(named));
for (const command of wanted.length > 0 ? wanted : COMMANDS) (await command.load())(program);

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
