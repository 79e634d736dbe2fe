/** Invoking Nix for evaluation: common arguments, quoting, error text, and tracked subprocesses. */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Derivation } from '../core/derivation.ts';
import { spawnTree } from './process.ts';
import type { ProcessExit, TreeProcess } from './process.ts';

/** What every evaluation subprocess shares: its environment, Nix arguments, and cancellation. */
export interface NixContext {
  env: Record<string, string>;
  /** Settings as `--option name value` pairs, already flattened. */
  optionArgs: string[];
  signal: AbortSignal;
  /** Subprocesses still running, so a failed evaluation can wait until all are gone. */
  live: Set<TreeProcess>;
  /** Where completed jobs' parsed \`.drv\` files are kept for the caller (EvaluateJobsOptions.derivations). */
  derivations?: Map<string, Derivation>;
  /** Address-space limit of every subprocess, in bytes. */
  memoryLimitBytes?: number;
}

/**
 * What untrusted code evaluates under, after (and so above) the caller's settings: no file outside
 * the source and the store, no URL, no build during evaluation, and none of the host's
 * credentials for fetching (tokens in nix.conf, the netrc file).
 */
const RESTRICTED_SETTINGS: Record<string, string> = {
  'restrict-eval': 'true',
  'allowed-uris': '',
  'allow-import-from-derivation': 'false',
  'access-tokens': '',
  'netrc-file': '/dev/null',
};

/** The `--option` arguments for the caller's settings plus the import-from-derivation and restriction policy. */
export function nixOptionArgs(options: Record<string, string>, allowIfd: boolean, restricted = false): string[] {
  const settings = {
    ...options,
    ...(allowIfd ? {} : { 'allow-import-from-derivation': 'false' }),
    ...(restricted ? RESTRICTED_SETTINGS : {}),
  };
  return Object.entries(settings).flatMap(([name, value]) => ['--option', name, value]);
}

/** A Nix string literal denoting exactly `text` (no interpolation). */
export function nixString(text: string): string {
  const escapes: Record<string, string> = { '\\': '\\\\', '"': '\\"', $: '\\$', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return `"${text.replace(/[\\"$\n\r\t]/g, (c) => escapes[c] ?? c)}"`;
}

const MAX_MESSAGE_LENGTH = 16 * 1024;

/** Nix's diagnostic from its stderr: ANSI escapes and warnings removed, starting at the first error. */
export function nixErrorMessage(stderr: string): string {
  // eslint-disable-next-line no-control-regex -- ANSI escape sequences are control characters.
  const plain = stderr.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  const lines = plain.split('\n').filter((line) => !line.startsWith('warning: '));
  const first = lines.findIndex((line) => line.startsWith('error:'));
  const message = (first < 0 ? lines : lines.slice(first)).join('\n').trim();
  return message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}\n… (truncated)` : message;
}

/** The absolute path of `name` in the directories of `searchPath`, or undefined. */
export async function findExecutable(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/** The outcome of one Nix command: its stdout, or Nix's error message. */
export type NixOutcome = { ok: true; stdout: string } | { ok: false; message: string; exit: ProcessExit };

/** Starts a tracked subprocess that the context's signal kills (with its whole tree). */
export function startTracked(ctx: NixContext, command: string, args: readonly string[]): TreeProcess {
  ctx.signal.throwIfAborted();
  const proc = spawnTree(command, args, ctx.env, ctx.memoryLimitBytes === undefined ? {} : { memoryLimitBytes: ctx.memoryLimitBytes });
  ctx.live.add(proc);
  const onAbort = (): void => void proc.kill();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  void proc.exited.then(() => {
    ctx.signal.removeEventListener('abort', onAbort);
    ctx.live.delete(proc);
  });
  return proc;
}

/** Runs `nix <args>` with the context's settings and collects its stdout. */
export async function runNix(ctx: NixContext, args: readonly string[]): Promise<NixOutcome> {
  const proc = startTracked(ctx, 'nix', ['--extra-experimental-features', 'nix-command flakes', ...ctx.optionArgs, ...args]);
  const chunks: string[] = [];
  proc.child.stdout.setEncoding('utf8');
  proc.child.stdout.on('data', (chunk: string) => chunks.push(chunk));
  const exit = await proc.exited;
  ctx.signal.throwIfAborted();
  if (exit.code === 0) return { ok: true, stdout: chunks.join('') };
  const message = nixErrorMessage(proc.stderr());
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${String(exit.code)}`;
  return { ok: false, message: message === '' ? `nix ${args[0] ?? ''} failed (${how}) without a message` : message, exit };
}
