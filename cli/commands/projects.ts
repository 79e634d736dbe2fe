/** `harmonia-ci projects list|sync|enable|disable`: which forge repositories are built, and how. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { temporalConnectionConfig } from '../../temporal/settings.ts';
import { ConfigError, loadServerConfig, parseDuration } from '../../config/index.ts';
import type { ServerConfig } from '../../config/types.ts';
import { openDatabase } from '../../db/open.ts';
import { ForgeNotConfiguredError, ForgeRequestError, ProjectError } from '../../forges/errors.ts';
import { createForges } from '../../forges/index.ts';
import { disableProject, enableProject, parsePrTrust, parseStatusMode, syncRepositories, type ProjectDeps } from '../../forges/projects.ts';
import { listRepositories } from '../../queries/repositories.ts';
import type { ForgeKind } from '../../forges/types.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { CliError } from '../errors.ts';

interface CommonOptions {
  config?: string;
}

interface EnableOptions extends CommonOptions {
  forge?: ForgeKind;
  name?: string;
  prTrust?: string;
  shares?: string;
  pollInterval?: string;
  poll: boolean;
  statuses?: string;
}

/** Registers `projects`. */
export function registerProjects(program: Command): void {
  const projects = program.command('projects').description('forge repositories and the projects built from them');

  projects
    .command('list')
    .description('list discovered repositories and whether they are enabled')
    .option('--json', 'print JSON', false)
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((options: CommonOptions & { json: boolean }) =>
      withProjects(options, false, async (deps) => {
        const rows = await listRepositories(deps.pool);
        if (options.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
        if (rows.length === 0) return void process.stdout.write('no repositories known: run `harmonia-ci projects sync`\n');
        for (const row of rows) {
          const settings = row.enabled
            ? `enabled as ${row.project}, pr-trust ${row.prTrust}, shares ${row.schedulingShares}${row.pollIntervalSeconds ? `, polled every ${row.pollIntervalSeconds} s` : ''}`
            : row.project ? `disabled (${row.project})` : 'not enabled';
          process.stdout.write(`${row.forge.padEnd(7)} ${row.repository.padEnd(40)} ${settings}\n`);
        }
      }),
    );

  projects
    .command('sync')
    .description('discover the repositories the GitHub App installations, tokens and Gitea account can see')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((options: CommonOptions) =>
      withProjects(options, false, async (deps) => {
        process.stdout.write(`${await syncRepositories(deps)} repositories discovered\n`);
      }),
    );

  projects
    .command('enable')
    .argument('<repository>', 'owner/name')
    .description('build a repository (again: update its settings); registers the Gitea webhook')
    .option('--forge <forge>', 'github or gitea, when both have the repository')
    .option('--name <name>', 'project name (default: owner/name)')
    .option('--pr-trust <trust>', 'which pull requests build: all, collaborators (others after a collaborator\'s "/ci run"), none')
    .option('--shares <n>', 'scheduling shares (fair share of builder time; default 100)')
    .option('--poll-interval <duration>', 'also poll the default branch this often, e.g. 5m (for webhooks that cannot reach us)')
    .option('--no-poll', 'stop polling')
    .option('--statuses <mode>', 'commit statuses: summary (the two summaries), failures (also one per failed attribute) or all (one per attribute)')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((repository: string, options: EnableOptions) =>
      withProjects(options, true, async (deps) => {
        const project = await enableProject(deps, {
          repository,
          ...(options.forge ? { forge: forgeOf(options.forge) } : {}),
          ...(options.name ? { name: options.name } : {}),
          ...(options.prTrust ? { prTrust: parsePrTrust(options.prTrust) } : {}),
          ...(options.shares ? { schedulingShares: positiveInteger(options.shares) } : {}),
          ...(options.pollInterval ? { pollIntervalMs: interval(options.pollInterval) } : options.poll ? {} : { pollIntervalMs: null }),
          ...(options.statuses ? { statuses: parseStatusMode(options.statuses) } : {}),
        });
        const poll = project.pollIntervalMs ? `, polled every ${Math.round(project.pollIntervalMs / 1000)} s` : '';
        process.stdout.write(`enabled ${project.projectName} (${project.forge} ${project.owner}/${project.name}), pr-trust ${project.prTrust}${poll}\n`);
      }),
    );

  projects
    .command('disable')
    .argument('<project>', 'project name or owner/name')
    .description('stop building a project; removes its Gitea webhook and stops polling')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((project: string, options: CommonOptions) =>
      withProjects(options, true, async (deps) => {
        const disabled = await disableProject(deps, project);
        process.stdout.write(`disabled ${disabled.projectName}\n`);
      }),
    );
}

async function withProjects(options: CommonOptions, temporal: boolean, run: (deps: ProjectDeps) => Promise<void>): Promise<void> {
  let config: ServerConfig;
  try {
    config = await loadServerConfig({ ...(options.config ? { file: options.config } : {}), env: process.env });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
  const database = await openDatabase({ ...(config.database.url ? { url: config.database.url } : {}), stateDir: config.stateDir, migrate: false });
  let client: Client | undefined;
  try {
    const address = config.temporal.address;
    if (temporal && address) client = await connectTemporal(await temporalConnectionConfig(config.temporal, address));
    await run({
      pool: database.pool,
      forges: createForges(config.forges),
      ...(client ? { client } : {}),
      publicUrl: config.api.publicUrl,
      defaults: { prTrust: config.projects.prTrust, schedulingShares: config.projects.schedulingShares },
    });
  } catch (error) {
    if (error instanceof ProjectError || error instanceof ForgeNotConfiguredError || error instanceof ForgeRequestError) {
      throw new CliError(error.message);
    }
    throw error;
  } finally {
    await client?.connection.close();
    await database.close();
  }
}

function forgeOf(value: string): ForgeKind {
  if (value === 'github' || value === 'gitea') return value;
  throw new CliError(`--forge: expected github or gitea, got "${value}"`);
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--shares: expected a positive integer, got "${value}"`);
  return n;
}

function interval(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 60_000) throw new CliError(`--poll-interval: expected a duration of at least 1m, such as "5m", got "${value}"`);
  return ms;
}
