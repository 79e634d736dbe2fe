/**
 * `harmonia-ci logs <build> [--follow]`: the live tail of a build log (the last 64 KB, refreshed
 * by the builder about every 2 s). With --follow it polls and prints what is new until the build
 * ends. The build is named by its `.drv` path, the hash part of it, or its workflow id.
 */
import type { Command } from 'commander';
import type { BuildLog } from '../../queries/index.ts';
import { FINAL_BUILD_STATUSES } from '../../workflows/types.ts';
import { CliError } from '../errors.ts';
import { buildArgument, SERVER_OPTION, withOperator, type OperatorOptions, type OpsReads } from '../operator.ts';

interface LogsOptions extends OperatorOptions {
  follow: boolean;
  interval: string;
}

/**
 * What `current` adds to `previous`, both being tails of the same growing log. The tail is a
 * window that drops old lines, so `current` starts somewhere inside `previous`: the new text is
 * what follows their overlap (the longest one, where lines repeat). With no overlap, more was
 * written between two polls than the window holds, and all of `current` is new.
 */
export function newLogText(previous: string, current: string): string {
  if (current.startsWith(previous)) return current.slice(previous.length);
  const firstLine = current.slice(0, current.indexOf('\n') + 1);
  if (firstLine !== '') {
    for (let at = previous.indexOf(firstLine); at >= 0; at = previous.indexOf(firstLine, at + 1)) {
      if (at > 0 && previous[at - 1] !== '\n') continue;
      const overlap = previous.slice(at);
      if (current.startsWith(overlap)) return current.slice(overlap.length);
    }
  }
  return current;
}

async function readLog(reads: OpsReads, hash: string, build: string): Promise<BuildLog> {
  const log = await reads.readBuildLog(hash);
  if (!log) throw new CliError(`no build of ${build} is recorded (read from ${reads.source}); \`harmonia-ci status <eval>\` lists an eval's builds`);
  return log;
}

const write = (text: string): void => void process.stdout.write(text);

async function follow(reads: OpsReads, hash: string, build: string, intervalMs: number): Promise<void> {
  let printed = '';
  for (;;) {
    const log = await readLog(reads, hash, build);
    const tail = log.tail ?? '';
    write(newLogText(printed, tail));
    printed = tail;
    if (FINAL_BUILD_STATUSES.includes(log.status)) {
      process.stderr.write(`harmonia-ci: ${log.name} ${log.status}\n`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Registers `harmonia-ci logs`. */
export function registerLogs(program: Command): void {
  program
    .command('logs')
    .argument('<build>', 'a .drv store path, its hash part, or the workflow id build/<hash>')
    .description('print the live tail of a build log; --follow keeps printing until the build ends')
    .option('-f, --follow', 'keep printing new log text until the build ends', false)
    .option('--interval <seconds>', 'with --follow: seconds between polls', '1')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((build: string, options: LogsOptions) =>
      withOperator(options, async ({ reads }) => {
        const hash = buildArgument(build);
        const seconds = Number(options.interval);
        if (!(seconds > 0)) throw new CliError(`--interval expects seconds above 0, got "${options.interval}"`);
        if (options.follow) {
          await follow(reads, hash, build, seconds * 1000);
          return;
        }
        const log = await readLog(reads, hash, build);
        if (log.tail === null || log.tail === '') {
          process.stderr.write(`harmonia-ci: no log recorded for ${log.name} (${log.status})\n`);
          return;
        }
        write(log.tail.endsWith('\n') ? log.tail : `${log.tail}\n`);
      }),
    );
}
