/**
 * Where `harmonia-ci login` keeps API tokens: `$XDG_CONFIG_HOME/harmonia-ci/credentials.json`
 * (`~/.config/…` by default), readable by its owner only (0600, in a 0700 directory), one entry
 * per server URL and the last one logged in to as the default.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './errors.ts';

export interface ServerLogin {
  token: string;
  /** `github:alice`, as the server said at login. */
  user: string;
}

export interface Credentials {
  /** The server commands talk to when none is given. */
  default?: string;
  servers: Record<string, ServerLogin>;
}

/** The credentials file for this environment. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  return join(base, 'harmonia-ci', 'credentials.json');
}

/** `https://ci.example.org/` → `https://ci.example.org`; anything but an http(s) URL is refused. */
export function normalizeServerUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`"${url}" is not a URL; give the server's address, such as https://ci.example.org`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`"${url}": expected an http:// or https:// URL`);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
}

/** The stored logins; none when the file does not exist yet. */
export async function readCredentials(env: NodeJS.ProcessEnv = process.env): Promise<Credentials> {
  const path = credentialsPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { servers: {} };
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Credentials>;
    return { ...(typeof parsed.default === 'string' ? { default: parsed.default } : {}), servers: parsed.servers ?? {} };
  } catch {
    throw new CliError(`${path} is not valid JSON; remove it and run \`harmonia-ci login <url>\` again`);
  }
}

/** Writes the logins atomically, readable by the owner alone. */
export async function writeCredentials(credentials: Credentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = credentialsPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
  return path;
}
