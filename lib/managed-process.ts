/**
 * A child server process we own: its recent output is kept for error messages, and
 * stopping it means SIGTERM, a grace period, then SIGKILL. If our own process exits
 * without stopping it (an uncaught error, process.exit), the child is killed too, so
 * launchers never leave servers behind.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all (e.g. ENOENT). */
  error?: Error;
}

export interface ManagedProcess {
  readonly pid: number | undefined;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  hasExited(): boolean;
  /** The last lines the process wrote to stdout and stderr, oldest first. */
  recentOutput(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with each output line, e.g. to forward it to a logger. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many output lines to remember for recentOutput (default 200). */
  keepLines?: number;
}

/** Starts `command` with piped output and returns a handle that can stop it. */
export function spawnManaged(command: string, args: readonly string[], options: SpawnOptions = {}): ManagedProcess {
  const keep = options.keepLines ?? 200;
  const lines: string[] = [];
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let exit: ProcessExit | undefined;

  const remember = (stream: 'stdout' | 'stderr') => (line: string) => {
    lines.push(line);
    if (lines.length > keep) lines.shift();
    options.onLine?.(line, stream);
  };
  createInterface({ input: child.stdout }).on('line', remember('stdout'));
  createInterface({ input: child.stderr }).on('line', remember('stderr'));

  const killOnOwnExit = (): void => {
    if (!exit) child.kill('SIGKILL');
  };
  process.once('exit', killOnOwnExit);

  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('error', (error) => {
      // 'error' without a pid means the program never started; otherwise 'exit' follows.
      if (child.pid === undefined) {
        exit = { code: null, signal: null, error };
        process.off('exit', killOnOwnExit);
        resolve(exit);
      }
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      process.off('exit', killOnOwnExit);
      // Let the last output lines arrive for error messages, but do not wait on pipes a
      // grandchild (a nix-daemon connection worker) may still hold open.
      const settle = setTimeout(() => resolve({ code, signal }), 200);
      child.once('close', () => {
        clearTimeout(settle);
        resolve({ code, signal });
      });
    });
  });

  return {
    pid: child.pid,
    exited,
    hasExited: () => exit !== undefined,
    recentOutput: (count = 20) => lines.slice(-count).join('\n'),
    async stop(graceMs = 5000) {
      if (exit) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const outcome = await Promise.race([exited, graceOver]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Describes how a process ended, for error messages ("exited with code 1", "was killed by SIGKILL"). */
export function describeExit(exit: ProcessExit): string {
  if (exit.error) return `could not be started (${exit.error.message})`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}
