/**
 * `harmonia-ci deploy-agent`: the listener on a host that CI deploys to (deploy/agent.ts,
 * deploy/agent-server.ts), configured by flags so a systemd unit holds all of it.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDuration } from '../../config/units.ts';
import { DeployAgent, type Activation } from '../../deploy/agent.ts';
import { startAgentServer } from '../../deploy/agent-server.ts';
import { CliError } from '../errors.ts';

interface AgentFlags {
  environment: string;
  secretFile: string;
  stateDir: string;
  host: string;
  port: string;
  profile?: string;
  activate?: string;
  nixos?: boolean;
  healthCheck?: string;
  healthTimeout: string;
  stepTimeout: string;
}

function durationFlag(value: string, flag: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new CliError(`${flag} '${value}' is not a duration: write e.g. 90s, 5m or 1h`);
  return ms;
}

async function runAgent(flags: AgentFlags): Promise<void> {
  if (flags.nixos === (flags.activate !== undefined)) throw new CliError('give exactly one of --nixos and --activate <command>');
  const activation: Activation = flags.nixos ? { kind: 'nixos' } : { kind: 'command', command: flags.activate! };
  const secret = await readFile(flags.secretFile).catch((error: unknown) => {
    throw new CliError(`cannot read the secret file ${flags.secretFile}: ${(error as Error).message}`);
  });
  const trimmed = Buffer.from(secret.toString('utf8').trim());
  if (trimmed.length < 16) throw new CliError(`the secret in ${flags.secretFile} is shorter than 16 bytes: make one with \`openssl rand -hex 32\``);
  const agent = await DeployAgent.start({
    environment: flags.environment,
    secret: trimmed,
    stateDir: flags.stateDir,
    profile: flags.profile ?? (flags.nixos ? '/nix/var/nix/profiles/system' : `${flags.stateDir}/profile`),
    activation,
    ...(flags.healthCheck ? { healthCheck: flags.healthCheck } : {}),
    healthTimeoutMs: durationFlag(flags.healthTimeout, '--health-timeout'),
    stepTimeoutMs: durationFlag(flags.stepTimeout, '--step-timeout'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const server = await startAgentServer(agent, trimmed, flags.host, Number(flags.port));
  process.stdout.write(`deploy agent for ${flags.environment} listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  await agent.idle();
}

/** Registers `harmonia-ci deploy-agent`. */
export function registerDeployAgent(program: Command): void {
  program
    .command('deploy-agent')
    .description('listen for signed deployment requests from harmonia-ci and activate the store paths they name')
    .requiredOption('--environment <name>', 'the environment this host is (requests for another are refused)')
    .requiredOption('--secret-file <file>', 'the secret shared with the CI server (at least 16 bytes)')
    .option('--state-dir <dir>', 'journal, recent reports and nonces', '/var/lib/harmonia-ci-deploy')
    .option('--host <address>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on; 0 picks a free one', '9095')
    .option('--nixos', 'activate as NixOS does: set /nix/var/nix/profiles/system, then switch-to-configuration switch')
    .option('--activate <command>', 'otherwise: a shell command run with the store path as $1')
    .option('--profile <path>', 'the profile to switch (default: the system profile with --nixos, else <state-dir>/profile)')
    .option('--health-check <command>', 'a shell command run with the store path as $1 after activation; failing rolls back')
    .option('--health-timeout <duration>', 'deadline of the health check', '2m')
    .option('--step-timeout <duration>', 'deadline of realising and of activation', '30m')
    .action((flags: AgentFlags) => runAgent(flags));
}
