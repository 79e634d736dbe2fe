/**
 * Evaluation subprocesses: started with a minimal environment (they inherit no secrets), in
 * their own process group, optionally under an address-space limit, and killed as a whole tree.
 * The tree matters because Nix starts builders for import-from-derivation in sessions of their
 * own (setsid), outside our group.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';

/** Variables a Nix evaluation may need; everything else in our environment stays behind. */
const PASSED_VARIABLES = [
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
  'LC_ALL',
  'TZ',
  'XDG_CACHE_HOME',
  'NIX_PATH',
  'NIX_REMOTE',
  'NIX_CONF_DIR',
  'NIX_USER_CONF_FILES',
  'NIX_STORE_DIR',
  'NIX_STATE_DIR',
  'NIX_LOG_DIR',
  'NIX_DAEMON_SOCKET_PATH',
  'NIX_SSL_CERT_FILE',
  'SSL_CERT_FILE',
] as const;

/**
 * What restricted (untrusted) evaluation keeps of our environment: how to reach the store and
 * nothing that names a user's files (HOME, XDG directories, NIX_PATH, user nix.conf files).
 */
const RESTRICTED_VARIABLES = [
  'PATH',
  'TMPDIR',
  'LANG',
  'LC_ALL',
  'TZ',
  'NIX_REMOTE',
  'NIX_CONF_DIR',
  'NIX_STORE_DIR',
  'NIX_STATE_DIR',
  'NIX_LOG_DIR',
  'NIX_DAEMON_SOCKET_PATH',
  'NIX_SSL_CERT_FILE',
  'SSL_CERT_FILE',
] as const;

/**
 * Git (which Nix runs to fetch git inputs) without the system's or the user's configuration, so
 * no credential helper or `insteadOf` rewrite of the host applies, and never prompting.
 */
export const GIT_ISOLATION: Readonly<Record<string, string>> = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
};

/** The environment of a restricted evaluation: store access, git isolation, `home` as HOME (and XDG directories), plus `extra`. */
export function restrictedEnvironment(home: string, extra: Record<string, string> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin', TMPDIR: tmpdir() };
  for (const name of RESTRICTED_VARIABLES) {
    const value = from[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  return {
    ...env,
    HOME: home,
    XDG_CONFIG_HOME: `${home}/.config`,
    XDG_CACHE_HOME: `${home}/.cache`,
    XDG_DATA_HOME: `${home}/.local/share`,
    ...GIT_ISOLATION,
    ...extra,
  };
}

/** The environment of an evaluation subprocess: an explicit allow-list plus `extra`. */
export function minimalEnvironment(extra: Record<string, string> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: homedir(), TMPDIR: tmpdir() };
  for (const name of PASSED_VARIABLES) {
    const value = from[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  return { ...env, ...extra };
}

function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone (ESRCH): nothing left to stop.
  }
}

/** pid → parent pid of every process, from /proc; empty where /proc does not exist. */
function parentPids(): Map<number, number> {
  const table = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return table;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is parenthesised and may itself contain spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), Number(fields[1]));
    } catch {
      // The process exited while we were reading.
    }
  }
  return table;
}

/**
 * Kills a process and every descendant. All are stopped first so none can fork or be
 * reparented while the tree is collected, then killed together.
 */
export function killProcessTree(rootPid: number): void {
  sendSignal(-rootPid, 'SIGSTOP');
  sendSignal(rootPid, 'SIGSTOP');
  const tree = new Set([rootPid]);
  for (let round = 0; round < 5; round += 1) {
    let grew = false;
    for (const [pid, parent] of parentPids()) {
      if (tree.has(parent) && !tree.has(pid)) {
        sendSignal(pid, 'SIGSTOP');
        tree.add(pid);
        grew = true;
      }
    }
    if (!grew) break;
  }
  for (const pid of tree) sendSignal(pid, 'SIGKILL');
  sendSignal(-rootPid, 'SIGKILL');
}

/** How a subprocess ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A subprocess whose stdout the caller reads; `stderr()` is the kept tail of its stderr. */
export interface TreeProcess {
  child: ChildProcess & { stdout: NonNullable<ChildProcess['stdout']> };
  exited: Promise<ProcessExit>;
  stderr(): string;
  /** Kills the whole tree and waits for the subprocess to be reaped. */
  kill(): Promise<ProcessExit>;
}

const STDERR_TAIL_BYTES = 64 * 1024;

/** Options of spawnTree. */
export interface SpawnTreeOptions {
  cwd?: string;
  /** Address-space limit (RLIMIT_AS) of the process and what it starts, in bytes. */
  memoryLimitBytes?: number;
}


/** Starts `command` in its own process group with exactly `env`; stdin is closed. */
export function spawnTree(command: string, args: readonly string[], env: Record<string, string>, options: SpawnTreeOptions = {}): TreeProcess {
  const limitKb = options.memoryLimitBytes === undefined ? undefined : Math.max(1, Math.floor(options.memoryLimitBytes / 1024));
  const child =
    limitKb === undefined
      ? spawn(command, args, { env, cwd: options.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      : // The shell sets the limit and becomes the command (exec): same pid, so the tree kill still applies.
        spawn('/bin/sh', ['-c', `ulimit -v ${limitKb} && exec "$0" "$@"`, command, ...args], {
          env,
          cwd: options.cwd,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
  });
  let markExited: (exit: ProcessExit) => void = () => undefined;
  const exited = new Promise<ProcessExit>((resolve) => (markExited = resolve));
  child.on('error', (error) => {
    stderr += `cannot run ${command}: ${error.message}\n`;
    markExited({ code: null, signal: null });
  });
  // 'close' waits for stdout to be drained, so a normal exit has delivered all its output.
  child.on('close', (code, signal) => markExited({ code, signal }));
  const terminated = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let killed: Promise<ProcessExit> | undefined;
  return {
    child: child as TreeProcess['child'],
    exited,
    stderr: () => stderr,
    kill: () => {
      killed ??= (async () => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          killProcessTree(child.pid);
          await terminated;
        }
        // A descendant that escaped the kill may still hold the pipes; they are of no use now.
        child.stdout.destroy();
        child.stderr.destroy();
        return exited;
      })();
      return killed;
    },
  };
}
