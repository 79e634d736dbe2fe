/** `harmonia-ci store …`: talk to the local nix-daemon over the worker protocol. */
import type { Command } from 'commander';
import { formatHash } from '../../daemon/core/hash.ts';
import { ActivityTracker } from '../../daemon/protocol/activity.ts';
import { buildExitCode, type DerivedPath } from '../../daemon/protocol/build-wire.ts';
import type { DaemonClient } from '../../daemon/protocol/client.ts';
import { DaemonError, ProtocolLayerError, stripAnsi } from '../../daemon/protocol/errors.ts';
import type { PathInfo } from '../../daemon/protocol/path-info.ts';
import { DaemonPool, DEFAULT_DAEMON_SOCKET } from '../../daemon/protocol/pool.ts';
import { CliError } from '../errors.ts';

interface SocketOptions {
  socket?: string;
}

/** Runs `action` on one daemon connection, turning protocol failures into messages for the terminal. */
async function withDaemon<T>(options: SocketOptions, action: (client: DaemonClient) => Promise<T>): Promise<T> {
  const pool = new DaemonPool({ socketPath: options.socket, maxConnections: 1 });
  try {
    return await pool.use(action, { retry: false });
  } catch (error) {
    if (error instanceof DaemonError) throw new CliError(stripAnsi(error.daemonMessage));
    if (error instanceof ProtocolLayerError) throw new CliError(error.message);
    throw error;
  } finally {
    await pool.close();
  }
}

/** The JSON shape of `store path-info --json`, close to `nix path-info --json`. */
export function pathInfoJson(info: PathInfo): Record<string, unknown> {
  return {
    path: info.path,
    narHash: formatHash(info.narHash, 'base32'),
    narSize: info.narSize,
    references: info.references,
    deriver: info.deriver ?? null,
    registrationTime: info.registrationTime,
    ultimate: info.ultimate,
    signatures: info.signatures,
    ca: info.ca ?? null,
  };
}

async function pathInfo(paths: string[], options: SocketOptions & { json?: boolean }): Promise<void> {
  const infos = await withDaemon(options, async (client) => {
    const found: PathInfo[] = [];
    for (const path of paths) {
      const info = await client.queryPathInfo(path);
      if (!info) throw new CliError(`path '${path}' is not valid in the store of the nix-daemon at ${client.connection.socketPath}`);
      found.push(info);
    }
    return found;
  });
  if (options.json) process.stdout.write(`${JSON.stringify(infos.map(pathInfoJson))}\n`);
  else for (const info of infos) process.stdout.write(`${info.path}\t${formatHash(info.narHash, 'base32')}\t${info.narSize}\n`);
}

function drvTarget(path: string): DerivedPath {
  return path.endsWith('.drv') ? { drvPath: path } : path;
}

async function build(drvPaths: string[], options: SocketOptions): Promise<void> {
  const tracker = new ActivityTracker({
    onLogLine: (line) => process.stderr.write(`${line}\n`),
    onMessage: (text) => process.stderr.write(`${text}\n`),
  });
  const results = await withDaemon(options, (client) => client.buildPathsWithResults(drvPaths.map(drvTarget), tracker.handlers()));
  for (const result of results) {
    if (!result.success) process.stderr.write(`error: ${stripAnsi(result.errorMessage) || `${result.target}: ${result.status}`}\n`);
    for (const output of result.builtOutputs) process.stdout.write(`${output.outPath}\n`);
  }
  const code = buildExitCode(results);
  if (code !== 0) process.exitCode = code;
}

async function missing(drvPaths: string[], options: SocketOptions & { json?: boolean }): Promise<void> {
  const result = await withDaemon(options, (client) => client.queryMissing(drvPaths.map(drvTarget)));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const section = (title: string, paths: string[]) => {
    if (paths.length === 0) return;
    process.stdout.write(`${title} (${paths.length}):\n${paths.map((p) => `  ${p}\n`).join('')}`);
  };
  section('will be built', result.willBuild);
  section('will be fetched', result.willSubstitute);
  section('unknown', result.unknown);
  if (result.willBuild.length + result.willSubstitute.length + result.unknown.length === 0) process.stdout.write('nothing to do: all outputs are valid\n');
}

/** Registers `store path-info`, `store build` and `store missing`. */
export function registerStore(program: Command): void {
  const store = program
    .command('store')
    .description(`query and build through the local nix-daemon (socket: --socket, else $NIX_DAEMON_SOCKET_PATH, else ${DEFAULT_DAEMON_SOCKET})`);
  const socketOption = ['--socket <path>', 'nix-daemon socket'] as const;

  store
    .command('path-info')
    .description('show NAR hash, size, references, deriver and signatures of store paths')
    .argument('<paths...>', 'store paths')
    .option(...socketOption)
    .option('--json', 'print a JSON array (narHash as sha256:<base32>)')
    .action(pathInfo);

  store
    .command('build')
    .description('build derivations (and their dependencies), streaming the log; exits like nix-build (100 build failed, 101 timed out, …)')
    .argument('<drvs...>', '.drv store paths')
    .option(...socketOption)
    .action(build);

  store
    .command('missing')
    .description('show what building the derivations would build, fetch, or cannot know')
    .argument('<drvs...>', '.drv store paths')
    .option(...socketOption)
    .option('--json', 'print JSON')
    .action(missing);
}
