/**
 * An app with logins on a fake GitHub (OAuth application and collaborator permissions checked
 * against GitHub's OpenAPI description and RFC 6749), a public and a private repository enabled as
 * projects, an eval of each, and helpers to log in through the whole OAuth round trip.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../api/app.ts';
import { createToken } from '../../access/tokens.ts';
import type { Right } from '../../access/rights.ts';
import type { CacheBackend } from '../../cache/types.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { startFakeForge, type FakeForge } from '../forge/fake-forge.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { requireEnv } from '../helpers/env.ts';

export const PUBLIC_URL = 'http://ci.test';
export const OPERATOR = 'ci-operator';
const oauthClient = (publicUrl: string) => ({ clientId: 'Iv1.harmonia', clientSecret: 'oauth-client-secret', redirectUri: `${publicUrl}/auth/github/callback` });

export interface AccessStack {
  app: FastifyInstance;
  fake: FakeForge;
  database: TestDatabase;
  temporal: Client;
  /** Eval ids of the public and the private project. */
  evals: { public: string; private: string };
  /** `Authorization` headers of a token for `github:<login>`. */
  bearer(login: string, scope: Right, expiresAt?: Date | null): Promise<Record<string, string>>;
  /** Logs `login` in through the OAuth round trip; returns the cookie header of the session. */
  logIn(login: string): Promise<string>;
  close(): Promise<void>;
}

/** `name=value` pairs of a response's cookies (as sent, still encoded) on top of `previous`, as a Cookie header. */
export function cookieHeader(response: LightMyRequestResponse, previous = ''): string {
  const split = (pair: string): [string, string] => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
  const jar = new Map(previous.split('; ').filter(Boolean).map(split));
  for (const line of [response.headers['set-cookie'] ?? []].flat()) {
    const [name, value] = split(String(line).split(';', 1)[0]!);
    if (value === '') jar.delete(name);
    else jar.set(name, value);
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

/** A CSRF token from the forms of a dashboard page. */
export function csrfOf(page: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page);
  if (!match) throw new Error('the page has no form with a CSRF token');
  return match[1]!;
}

export interface AccessStackOptions {
  /** More `HARMONIA_CI_*` settings. */
  env?: Record<string, string>;
  /** Serve a binary cache from this directory-backed storage at the root. */
  cache?: CacheBackend;
  /** Where a browser reaches the app (its OAuth callback is registered there); http://ci.test for inject. */
  publicUrl?: string;
}

export async function startAccessStack(options: AccessStackOptions = {}): Promise<AccessStack> {
  const address = requireEnv('TEMPORAL_ADDRESS');
  const database = await createTestDatabase();
  const temporal: Client = await connectTemporal({ address, namespace: process.env.HARMONIA_CI_TEMPORAL_NAMESPACE ?? 'default' });
  const publicUrl = options.publicUrl ?? PUBLIC_URL;
  const CLIENT = oauthClient(publicUrl);
  const fake = await startFakeForge({ kind: 'github', token: 'ci-token', oauth: CLIENT });
  const secrets = await mkdtemp(join(tmpdir(), 'access-'));
  await writeFile(join(secrets, 'token'), 'ci-token\n');
  await writeFile(join(secrets, 'cookie'), 'a cookie secret of more than thirty-two characters\n');
  await writeFile(join(secrets, 'client'), `${CLIENT.clientSecret}\n`);
  fake.addRepo({ owner: 'acme', name: 'open', id: 101, dir: join(secrets, 'open'), defaultBranch: 'main' });
  fake.addRepo({ owner: 'acme', name: 'secret', id: 102, dir: join(secrets, 'secret'), defaultBranch: 'main', private: true });
  const config = await loadServerConfig({
    env: {
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: address,
      HARMONIA_CI_API_PUBLIC_URL: publicUrl,
      HARMONIA_CI_API_COOKIE_SECRET_FILE: join(secrets, 'cookie'),
      HARMONIA_CI_FORGES_GITHUB_API_URL: fake.url,
      HARMONIA_CI_FORGES_GITHUB_TOKEN_FILE: join(secrets, 'token'),
      HARMONIA_CI_AUTH_GITHUB_URL: fake.url,
      HARMONIA_CI_AUTH_GITHUB_CLIENT_ID: CLIENT.clientId,
      HARMONIA_CI_AUTH_GITHUB_CLIENT_SECRET_FILE: join(secrets, 'client'),
      HARMONIA_CI_AUTH_ADMINS: `github:${OPERATOR}`,
      ...options.env,
    },
  });
  const app = buildApp({ config, log: createLogger({ level: 'silent' }), deps: { temporal, ...(options.cache ? { cacheStorage: options.cache } : {}) } });
  const close = async (): Promise<void> => {
    await app.close();
    await temporal.connection.close();
    await fake.close();
    await database.drop();
    await rm(secrets, { recursive: true, force: true });
  };
  const bearer = async (login: string, scope: Right, expiresAt: Date | null = null) => {
    const { token } = await createToken(database.pool, { forge: 'github', login, scope, expiresAt });
    return { authorization: `Bearer ${token}` };
  };
  try {
    await app.ready();
    const operator = await bearer(OPERATOR, 'admin');
    const synced = await app.inject({ method: 'POST', url: '/api/projects/sync', headers: operator });
    if (synced.statusCode !== 200) throw new Error(`sync answered ${synced.statusCode}: ${synced.body}`);
    const evals: Record<string, string> = {};
    for (const name of ['open', 'secret']) {
      const enabled = await app.inject({ method: 'POST', url: `/api/projects/acme/${name}/enable`, headers: operator, payload: {} });
      if (enabled.statusCode !== 200) throw new Error(`enabling acme/${name} answered ${enabled.statusCode}: ${enabled.body}`);
      const { rows } = await database.pool.query<{ id: string }>(
        `INSERT INTO evaluations (project_id, commit_sha, ref, status, error, finished_at)
         SELECT id, $2, 'refs/heads/main', 'failed', $3, now() FROM projects WHERE name = $1 RETURNING id`,
        [`acme/${name}`, (name === 'open' ? 'a' : 'b').repeat(40), `error of acme/${name}`],
      );
      evals[name] = String(rows[0]!.id);
    }
    const logIn = async (login: string): Promise<string> => {
      fake.oauthUser = login;
      const start = await app.inject({ method: 'GET', url: '/auth/github/login' });
      if (start.statusCode !== 302) throw new Error(`the login link answered ${start.statusCode}`);
      const authorize = await fetch(String(start.headers.location), { redirect: 'manual' });
      const callback = new URL(authorize.headers.get('location') ?? '');
      if (callback.origin !== publicUrl) throw new Error(`the forge sent the browser to ${callback} instead of the registered callback`);
      const done = await app.inject({ method: 'GET', url: `${callback.pathname}${callback.search}`, headers: { cookie: cookieHeader(start) } });
      if (done.statusCode !== 303) throw new Error(`the callback answered ${done.statusCode}: ${done.body}`);
      return cookieHeader(done);
    };
    return { app, fake, database, temporal, evals: { public: evals.open!, private: evals.secret! }, bearer, logIn, close };
  } catch (error) {
    await close();
    throw error;
  }
}
