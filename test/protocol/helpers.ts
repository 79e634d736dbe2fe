/** Helpers for tests against the private nix-daemon: the nix CLIs as oracle, unique derivations. */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireEnv } from '../helpers/env.ts';
import { LOCAL_DAEMON_OPTIONS as NIX_TEST_OPTIONS } from '../../lib/nix-daemon.ts';

/** The socket of the daemon started by test/run.ts. */
export function daemonSocket(): string {
  return requireEnv('NIX_DAEMON_SOCKET_PATH');
}

/** Environment that makes the nix CLIs talk to the test daemon. */
export function nixEnv(): NodeJS.ProcessEnv {
  return { ...process.env, NIX_REMOTE: `unix://${daemonSocket()}` };
}

/** Runs a nix CLI through the test daemon and returns its stdout; throws with its stderr on failure. */
export function nixCli(command: string, args: readonly string[], input?: Uint8Array): Buffer {
  return execFileSync(command, [...NIX_TEST_OPTIONS, ...args], { env: nixEnv(), input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Like nixCli but returns status, stdout and stderr instead of throwing. */
export function nixCliResult(command: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, [...NIX_TEST_OPTIONS, ...args], { env: nixEnv(), encoding: 'utf8', maxBuffer: 1 << 30 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A fresh random word, so each run's derivations are new store paths. */
export function nonce(): string {
  return randomBytes(6).toString('hex');
}

const scratchDirs: string[] = [];
process.once('exit', () => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

/** A directory removed when the process exits. */
export function scratchDir(prefix = 'harmonia-protocol-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/** Nix prelude for test expressions: `sh name script [inputs]` makes a /bin/sh derivation. */
const PRELUDE = `
let sh = name: script: derivation {
  inherit name;
  builder = "/bin/sh";
  args = [ "-c" script ];
  system = builtins.currentSystem;
};
in`;

/**
 * Instantiates `attrs` (a Nix attribute set expression that may use `sh`) and returns the `.drv`
 * path of each attribute, in the order given.
 */
export function instantiate(attrs: string, names: readonly string[]): Record<string, string> {
  const file = join(scratchDir(), 'default.nix');
  writeFileSync(file, `${PRELUDE} ${attrs}`);
  const out: Record<string, string> = {};
  for (const name of names) out[name] = nixCli('nix-instantiate', [file, '-A', name]).toString().trim();
  return out;
}

/** The output paths of a derivation, as nix-store reports them. */
export function outputsOf(drvPath: string): string[] {
  return nixCli('nix-store', ['--query', '--outputs', drvPath]).toString().trim().split('\n');
}

/** Builds derivations with nix-store and returns their outputs. */
export function realise(...drvPaths: string[]): string[] {
  return nixCli('nix-store', ['--realise', ...drvPaths]).toString().trim().split('\n');
}

/** Adds a file with the given contents to the store (nix-store --add) and returns its path. */
export function addFile(name: string, contents: string | Uint8Array): string {
  const dir = scratchDir();
  const file = join(dir, name);
  writeFileSync(file, contents);
  return addPath(file);
}

/** Adds a local file or directory tree to the store (nix-store --add) and returns its path. */
export function addPath(localPath: string): string {
  return nixCli('nix-store', ['--add', localPath]).toString().trim();
}

/** `nix-store --dump` of a store path. */
export function dump(path: string): Buffer {
  return nixCli('nix-store', ['--dump', path]);
}
