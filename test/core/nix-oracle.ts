/** Runs the real Nix 2.8 tools as the oracle for core tests, in throwaway directories. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/** Options every nix invocation needs here: no build users, no network substituters. */
export const NIX_OPTIONS = ['--option', 'build-users-group', '', '--option', 'substituters', ''];
export const NIX_COMMAND = ['--extra-experimental-features', 'nix-command'];

/** Runs a Nix tool with NIX_OPTIONS first (later options override them) and returns stdout; a failure carries stderr. */
export async function nix(tool: string, args: readonly string[]): Promise<string> {
  const result = await execa(tool, [...NIX_OPTIONS, ...args], { reject: false, stripFinalNewline: false });
  if (result.exitCode !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  return result.stdout;
}

/** Like nix() but reports success and stderr instead of throwing, for "does Nix accept this" checks. */
export async function nixAccepts(tool: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const result = await execa(tool, [...NIX_OPTIONS, ...args], { reject: false });
  return { ok: result.exitCode === 0, stdout: result.stdout, stderr: result.stderr };
}

/** Output lines of a command, without the empty trailing one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** A unique token so test derivations and files never collide between runs. */
export function nonce(): string {
  return randomBytes(6).toString('hex');
}

/** A temporary directory removed by the returned cleanup function. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `harmonia-core-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A Nix string literal for arbitrary text (escaping `"`, `\`, `${` and control characters Nix names). */
export function nixString(s: string): string {
  return `"${s.replace(/[\\"$\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\${c}`))}"`;
}
