/**
 * `harmonia-ci login <url>`: stores an API token for a remote server, after asking the server
 * whom it acts for; `harmonia-ci logout [url]` forgets it. The token is read from standard input
 * (pasted at the prompt, or piped: `harmonia-ci login https://ci.example.org < token`), never from
 * the command line, where other users could see it. Afterwards `status`, `logs`, `nodes`, `cancel`,
 * `rebuild`, `rebuild-failed` and `drain` talk to that server over HTTP with the token.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { fetchText } from '../../lib/http.ts';
import { normalizeServerUrl, readCredentials, writeCredentials } from '../credentials.ts';
import { CliError } from '../errors.ts';
import { print } from '../operator.ts';

/** The first line of standard input, prompting when it is a terminal. */
async function readToken(url: string): Promise<string> {
  const lines = createInterface({ input: process.stdin, ...(process.stdin.isTTY ? { output: process.stderr } : {}) });
  try {
    const prompt = process.stdin.isTTY ? `Paste an API token from ${url}/ci/settings/tokens: ` : '';
    const line = await Promise.race([lines.question(prompt), new Promise<string>((resolve) => lines.once('close', () => resolve('')))]);
    return line.trim();
  } finally {
    lines.close();
  }
}

/** Whom the token acts for, as the server says; a CliError naming what went wrong otherwise. */
export async function whoAmI(url: string, token: string): Promise<{ forge: string; login: string; scope: string | null; operator: boolean }> {
  let answer;
  try {
    answer = await fetchText(`${url}/api/whoami`, { headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
  } catch (error) {
    throw new CliError(`cannot reach ${url} (${(error as { cause?: Error }).cause?.message ?? (error as Error).message}); check the URL`);
  }
  const body = JSON.parse(answer.text || '{}') as { forge?: string; login?: string; scope?: string | null; operator?: boolean; error?: string };
  if (answer.response.status === 401) throw new CliError(`${url} does not accept this token (${body.error ?? 'unauthorized'}); create one at ${url}/ci/settings/tokens`);
  if (!answer.response.ok || !body.login || !body.forge) throw new CliError(`${url} answered ${answer.response.status} to /api/whoami: ${body.error ?? 'not a harmonia-ci server?'}`);
  return { forge: body.forge, login: body.login, scope: body.scope ?? null, operator: body.operator === true };
}

/** Registers `harmonia-ci login` and `harmonia-ci logout`. */
export function registerLogin(program: Command): void {
  program
    .command('login')
    .argument('<url>', 'the harmonia-ci server, as in its api.public-url (https://ci.example.org)')
    .description('store an API token for a server (read from standard input); later commands talk to it over HTTP')
    .action(async (given: string) => {
      const url = normalizeServerUrl(given);
      const token = await readToken(url);
      if (token === '') throw new CliError(`no token given; create one at ${url}/ci/settings/tokens and paste it, or pipe it in`);
      const who = await whoAmI(url, token);
      const credentials = await readCredentials();
      const user = `${who.forge}:${who.login}`;
      credentials.servers[url] = { token, user };
      credentials.default = url;
      const path = await writeCredentials(credentials);
      print(`logged in to ${url} as ${user} (token scope ${who.scope ?? 'none'}${who.operator ? ', operator' : ''}); stored in ${path}`);
    });

  program
    .command('logout')
    .argument('[url]', 'the server to forget (default: the one logged in to last)')
    .description('forget the stored token of a server')
    .action(async (given: string | undefined) => {
      const credentials = await readCredentials();
      const url = given ? normalizeServerUrl(given) : credentials.default;
      if (!url || !credentials.servers[url]) throw new CliError(`not logged in to ${url ?? 'any server'}`);
      delete credentials.servers[url];
      if (credentials.default === url) delete credentials.default;
      await writeCredentials(credentials);
      print(`forgot the token for ${url}; revoke it at ${url}/ci/settings/tokens if it may have leaked`);
    });
}
