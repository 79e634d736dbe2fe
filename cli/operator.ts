/**
 * What the operator commands (eval, status, logs, cancel, rebuild, nodes, drain) share:
 * configuration, a Temporal client, and reads of the CI state.
 *
 * Reads go straight to PostgreSQL when a database URL is configured. Without one they go through
 * the JSON API (`api.public-url`, by default http://localhost:8080) of the running
 * `harmonia-ci dev` or `api`: the embedded PGlite of `dev` admits a single connection and belongs
 * to the dev process, so the command line must not open its directory. Writes are Temporal
 * signals, never SQL; with no Temporal address configured the commands use 127.0.0.1:7233, where
 * `harmonia-ci dev` and `run` start their dev server.
 */
import type { Client } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import type { Pool } from 'pg';
import * as queries from '../queries/index.ts';
import type { AuditRecord, BuildDetail, BuildLog, EvalDetail, EvalFilter, EvalSummary, NodeSummary, ParkedDelivery } from '../queries/index.ts';
import { temporalConnectionConfig } from '../temporal/settings.ts';
import { loadServerConfig } from '../config/server.ts';
import type { ServerConfig } from '../config/types.ts';
import { createPool } from '../db/pool.ts';
import { fetchText } from '../lib/http.ts';
import { connectTemporal } from '../temporal/connection.ts';
import { CliError } from './errors.ts';
import { withSetupErrorsAsCliErrors } from './setup-errors.ts';
import { normalizeServerUrl, readCredentials } from './credentials.ts';

export const DEV_TEMPORAL_ADDRESS = '127.0.0.1:7233';
/** Audit entries `status` lists. */
const AUDIT_ENTRIES = 10;

export interface OpsReads {
  /** Where the reads come from, for messages. */
  readonly source: string;
  listEvals(filter: EvalFilter): Promise<EvalSummary[]>;
  readEval(evalId: string): Promise<EvalDetail | undefined>;
  readBuild(hashPart: string): Promise<BuildDetail | undefined>;
  readBuildLog(hashPart: string): Promise<BuildLog | undefined>;
  listNodes(): Promise<NodeSummary[]>;
  listParkedDeliveries(project?: string): Promise<ParkedDelivery[]>;
  /** Recent audit entries; undefined when the API does not show them to this caller. */
  listAudit(project?: string): Promise<AuditRecord[] | undefined>;
}

/** A remote server's action routes, called with the stored token. */
export interface RemoteApi {
  url: string;
  /** Posts to an action route; resolves to the server's message, throws a CliError with its refusal. */
  post(path: string): Promise<string>;
}

export interface Operator {
  config: ServerConfig;
  reads: OpsReads;
  /** Connects on first use. */
  temporal(): Promise<Client>;
  /** Set when the command talks to a server over HTTP: actions go through its routes, not Temporal. */
  remote: RemoteApi | undefined;
}

export interface OperatorOptions {
  config?: string;
  server?: string;
}

/** The `--server` option of the commands that may talk to a remote server. */
export const SERVER_OPTION = [
  '--server <url>',
  'talk to this harmonia-ci server over HTTP with the token `harmonia-ci login` stored (default: $HARMONIA_CI_SERVER, else the last login when neither a database nor Temporal is configured)',
] as const;

/** The server to talk to over HTTP and its stored token, if this command talks to one. */
async function remoteServer(options: OperatorOptions, config: ServerConfig): Promise<{ url: string; token: string | undefined } | undefined> {
  const credentials = await readCredentials();
  const explicit = options.server ?? process.env.HARMONIA_CI_SERVER;
  const local = config.database.url !== undefined || config.temporal.address !== undefined;
  const url = explicit ? normalizeServerUrl(explicit) : local ? undefined : credentials.default;
  return url ? { url, token: credentials.servers[url]?.token } : undefined;
}

/** The action routes of the server at `url`, called with `token` (none: anonymously). */
export function remoteApi(url: string, token: string | undefined): RemoteApi {
  return {
    url,
    async post(path) {
      let answer;
      try {
        answer = await fetchText(`${url}${path}`, { method: 'POST', headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
      } catch (error) {
        throw new CliError(`cannot reach the harmonia-ci API at ${url} (${(error as { cause?: Error }).cause?.message ?? (error as Error).message})`);
      }
      const body = parseJson(answer.text) as { message?: string; error?: string };
      if (answer.response.ok && typeof body.message === 'string') return body.message;
      const hint = answer.response.status === 401 ? `; run \`harmonia-ci login ${url}\` with a token from ${url}/ci/settings/tokens` : '';
      throw new CliError(`${url} refused ${path} (${answer.response.status}): ${body.error ?? answer.response.statusText}${hint}`);
    },
  };
}

/** Runs a command body with an operator context, closing what it opened; setup errors become CliErrors. */
export function withOperator(options: OperatorOptions, run: (operator: Operator) => Promise<void>): Promise<void> {
  return withSetupErrorsAsCliErrors(async () => {
    const config = await loadServerConfig({ env: process.env, file: options.config });
    const server = await remoteServer(options, config);
    const pool = !server && config.database.url ? createPool(config.database.url, { max: 2 }) : undefined;
    const reads = pool ? sqlReads(pool) : server ? httpReads(server.url, server.token) : httpReads(config.api.publicUrl);
    let client: Promise<Client> | undefined;
    try {
      await run({
        config,
        reads,
        remote: server && remoteApi(server.url, server.token),
        temporal: () =>
          (client ??= temporalConnectionConfig(config.temporal, config.temporal.address ?? DEV_TEMPORAL_ADDRESS).then(connectTemporal)),
      });
    } finally {
      await client?.then((c) => c.connection.close()).catch(() => undefined);
      await pool?.end();
    }
  });
}

function sqlReads(pool: Pool): OpsReads {
  return {
    source: 'PostgreSQL',
    listEvals: (filter) => queries.listEvals(pool, filter),
    readEval: (evalId) => queries.readEval(pool, evalId),
    readBuild: (hash) => queries.readBuild(pool, hash),
    readBuildLog: (hash) => queries.readBuildLog(pool, hash),
    listNodes: () => queries.listNodes(pool),
    listParkedDeliveries: (project) => queries.listParkedDeliveries(pool, { project }),
    listAudit: (project) => queries.listAudit(pool, { project, limit: AUDIT_ENTRIES }),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function httpReads(baseUrl: string, token?: string): OpsReads {
  const base = baseUrl.replace(/\/+$/, '');
  const get = async <T>(path: string, missingIsUndefined = false, refusedIsUndefined = false): Promise<T | undefined> => {
    let response: Response;
    let text: string;
    try {
      ({ response, text } = await fetchText(`${base}${path}`, { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }));
    } catch (error) {
      const cause = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
      throw new CliError(
        `cannot reach the harmonia-ci API at ${base} (${cause}); start \`harmonia-ci dev\`, set api.public-url ` +
          '(HARMONIA_CI_API_PUBLIC_URL) to where it runs, or set DATABASE_URL to read PostgreSQL directly',
      );
    }
    if (response.status === 404 && missingIsUndefined) return undefined;
    if ((response.status === 401 || response.status === 403) && refusedIsUndefined) return undefined;
    const body = parseJson(text) as { error?: string };
    if (!response.ok) throw new CliError(`the API at ${base} answered ${response.status} to ${path}: ${body.error ?? response.statusText}`);
    return body as T;
  };
  return {
    source: `the API at ${base}`,
    listEvals: async (filter) => {
      const query = new URLSearchParams({ limit: String(filter.limit) });
      for (const key of ['project', 'ref', 'commit'] as const) {
        const value = filter[key];
        if (value) query.set(key, value);
      }
      return (await get<EvalSummary[]>(`/api/evals?${query}`))!;
    },
    readEval: (evalId) => get<EvalDetail>(`/api/evals/${encodeURIComponent(evalId)}`, true),
    readBuild: (hash) => get<BuildDetail>(`/api/builds/${hash}`, true),
    readBuildLog: (hash) => get<BuildLog>(`/api/builds/${hash}/log`, true),
    listNodes: async () => (await get<NodeSummary[]>('/api/nodes'))!,
    listParkedDeliveries: async (project) =>
      (await get<ParkedDelivery[]>(`/api/deliveries?${new URLSearchParams({ status: 'parked', ...(project ? { project } : {}) })}`))!,
    listAudit: (project) => get<AuditRecord[]>(`/api/audit?${new URLSearchParams({ limit: String(AUDIT_ENTRIES), ...(project ? { project } : {}) })}`, false, true),
  };
}

/** `main` → `refs/heads/main`; full refs stay as they are. */
export function fullRef(ref: string): string {
  return ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
}

/** The hash part of a build argument (drv path, hash part, or `build/<hash>`), or a CliError saying what is accepted. */
export function buildArgument(build: string): string {
  const hash = queries.buildHashPart(build);
  if (!hash) throw new CliError(`"${build}" names no build: give a .drv store path, its 32-character hash part, or build/<hash>`);
  return hash;
}

/** A build that must exist. */
export async function requireBuild(reads: OpsReads, build: string): Promise<BuildDetail> {
  const detail = await reads.readBuild(buildArgument(build));
  if (!detail) throw new CliError(`no build of ${build} is recorded (read from ${reads.source}); \`harmonia-ci status <eval>\` lists an eval's builds`);
  return detail;
}

/** An eval that must exist. */
export async function requireEval(reads: OpsReads, evalId: string): Promise<EvalDetail> {
  if (!/^\d+$/.test(evalId)) throw new CliError(`"${evalId}" is not an eval id (a number, as \`harmonia-ci status\` lists them)`);
  const detail = await reads.readEval(evalId);
  if (!detail) throw new CliError(`no eval ${evalId} (read from ${reads.source}); \`harmonia-ci status\` lists recent evals`);
  return detail;
}

/** Signals a running workflow; a missing or closed one becomes a CliError with `whenMissing` as the hint. */
export async function signalWorkflow<Args extends unknown[]>(
  client: Client,
  workflowId: string,
  signal: SignalDefinition<Args>,
  args: Args,
  whenMissing: string,
): Promise<void> {
  try {
    await client.workflow.getHandle(workflowId).signal(signal, ...args);
  } catch (error) {
    if ((error as Error).name === 'WorkflowNotFoundError') throw new CliError(`no running workflow ${workflowId}: ${whenMissing}`);
    throw error;
  }
}

/** Writes a line to stdout. */
export const print = (line = ''): void => void process.stdout.write(`${line}\n`);
