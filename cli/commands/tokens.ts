/**
 * `harmonia-ci tokens create|list|revoke`: API tokens for scripts, created by an operator with
 * access to the database. A token acts for a forge user with at most its scope; the secret is
 * printed once and only its SHA-256 is stored. A revoked token stops working at its next request.
 */
import type { Command } from 'commander';
import { RIGHTS, type Right } from '../../access/rights.ts';
import { createToken, listTokens, revokeToken } from '../../access/tokens.ts';
import { ConfigError, loadServerConfig, parseDuration } from '../../config/index.ts';
import { openDatabase, type Database } from '../../db/open.ts';
import type { ForgeKind } from '../../forges/types.ts';
import { CliError } from '../errors.ts';
import { print } from '../operator.ts';

interface CommonOptions {
  config?: string;
}

interface CreateOptions extends CommonOptions {
  user: string;
  scope: string;
  expires?: string;
  description?: string;
}

const USER = /^(github|gitea):([A-Za-z0-9][A-Za-z0-9._-]*)$/;

async function withDatabase(options: CommonOptions, run: (database: Database) => Promise<void>): Promise<void> {
  let config;
  try {
    config = await loadServerConfig({ ...(options.config ? { file: options.config } : {}), env: process.env });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
  const database = await openDatabase({ ...(config.database.url ? { url: config.database.url } : {}), stateDir: config.stateDir, migrate: false });
  try {
    await run(database);
  } finally {
    await database.close();
  }
}

/** `--user github:alice` → its forge and login, or a CliError saying the form. */
export function parseTokenUser(user: string): { forge: ForgeKind; login: string } {
  const match = USER.exec(user);
  if (!match) throw new CliError(`--user ${user}: expected <forge>:<login>, such as github:alice or gitea:bob`);
  return { forge: match[1] as ForgeKind, login: match[2]! };
}

/** `--expires 30d` → the moment it expires; none given means never. */
export function parseExpiry(expires: string | undefined, now = Date.now()): Date | null {
  if (expires === undefined) return null;
  const ms = parseDuration(expires);
  if (ms === undefined || ms <= 0) throw new CliError(`--expires ${expires}: expected a duration such as "30d" or "12h"`);
  return new Date(now + ms);
}

/** Registers `tokens`. */
export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for scripts (Authorization: Bearer)');

  tokens
    .command('create')
    .description('create a token acting for a forge user; prints it once')
    .requiredOption('--user <forge:login>', 'whom it acts for, e.g. github:alice')
    .requiredOption('--scope <scope>', 'the most it may do: read, write or admin')
    .option('--expires <duration>', 'lifetime, e.g. 90d (default: never)')
    .option('--description <text>', 'what it is for')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action(async (options: CreateOptions) => {
      const owner = parseTokenUser(options.user);
      if (!RIGHTS.includes(options.scope as Right)) throw new CliError(`--scope ${options.scope}: expected read, write or admin`);
      const expiresAt = parseExpiry(options.expires);
      await withDatabase(options, async ({ pool }) => {
        const created = await createToken(pool, { ...owner, scope: options.scope as Right, expiresAt, description: options.description ?? '' });
        print(`token ${created.id} for ${options.user}, scope ${options.scope}, ${created.expiresAt ? `expires ${created.expiresAt}` : 'never expires'}:`);
        print(created.token);
      });
    });

  tokens
    .command('list')
    .description('list live tokens (never their secrets)')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((options: CommonOptions) =>
      withDatabase(options, async ({ pool }) => {
        for (const t of await listTokens(pool)) {
          print(`${t.id}\t${t.forge}:${t.login}\t${t.scope}\texpires ${t.expiresAt ?? 'never'}\tlast used ${t.lastUsedAt ?? 'never'}\t${t.description}`);
        }
      }),
    );

  tokens
    .command('revoke')
    .argument('<id>', 'the token id, as `tokens list` shows it')
    .description('revoke a token; it stops working at once')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((id: string, options: CommonOptions) =>
      withDatabase(options, async ({ pool }) => {
        if (!(await revokeToken(pool, id))) throw new CliError(`no live token ${id}; \`harmonia-ci tokens list\` shows them`);
        print(`token ${id} revoked`);
      }),
    );
}
