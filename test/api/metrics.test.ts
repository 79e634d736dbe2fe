/**
 * `GET /metrics` of the real app over a seeded test database and a local cache directory: the
 * exposition passes `promtool check metrics`, and each family carries the numbers the rows imply.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import { buildApp } from '../../api/app.ts';
import { createApiMetrics } from '../../api/plugins/metrics.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { tempDir } from '../cache/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { requireEnv } from '../helpers/env.ts';
import { runPromtool } from '../helpers/promtool.ts';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const NARINFO_HASH = '0'.repeat(31) + '1';
const NAR_KEY = `nar/${'1'.repeat(52)}.nar.zst`;
/** A narinfo name the cache directory holds a directory under: reading it fails. */
const UNREADABLE_HASH = '3'.repeat(32);

/** The value of the sample `name{labels}` in an exposition; fails when it is absent or twice there. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`).sort().join(',');
  const found = text.split('\n').filter((line) => {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    return match?.[1] === name && (match[2] ?? '').split(',').filter(Boolean).sort().join(',') === wanted;
  });
  assert.equal(found.length, 1, `exactly one sample ${name}{${wanted}} in:\n${text}`);
  return Number(found[0]!.slice(found[0]!.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  let database: TestDatabase;
  let temporal: Client;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let app: FastifyInstance;

  async function project(name: string, shares: number): Promise<string> {
    const repo = await database.pool.query<{ id: string }>(
      `INSERT INTO repositories (forge, owner, name, clone_url) VALUES ('github', 'o', $1, 'https://github.com/o/x.git') RETURNING id`,
      [name],
    );
    const { rows } = await database.pool.query<{ id: string }>(
      'INSERT INTO projects (repository_id, name, scheduling_shares) VALUES ($1, $2, $3) RETURNING id',
      [repo.rows[0]!.id, `o/${name}`, shares],
    );
    return rows[0]!.id;
  }

  /** An eval in `status`; finished ones took `seconds`. */
  async function evaluation(projectId: string, status: string, seconds?: number): Promise<string> {
    const { rows } = await database.pool.query<{ id: string }>(
      `INSERT INTO evaluations (project_id, commit_sha, ref, status, started_at, finished_at, error)
       VALUES ($1, $2, 'refs/heads/main', $3,
               CASE WHEN $3 <> 'queued' THEN now() - interval '1 hour' END,
               CASE WHEN $4::float8 IS NOT NULL THEN now() - interval '1 hour' + make_interval(secs => $4::float8) END,
               CASE WHEN $3 = 'failed' THEN 'boom' END)
       RETURNING id`,
      [projectId, hex(20), status, seconds ?? null],
    );
    return rows[0]!.id;
  }

  /** A build planned by `evalId`, ready `waited + took` seconds ago, started `took` seconds ago (when given). */
  async function build(evalId: string, fields: { status: string; system: string; features?: string[]; attempts?: number; node?: string; queued?: boolean; waited?: number; took?: number }): Promise<void> {
    const drvPath = `/nix/store/${hex(16)}-x.drv`;
    await database.pool.query('INSERT INTO derivations (drv_path, name, system, required_system_features) VALUES ($1, $2, $3, $4)', [
      drvPath, 'x', fields.system, fields.features ?? [],
    ]);
    const { rows } = await database.pool.query<{ id: string }>(
      `INSERT INTO build_jobs (drv_path, status, attempts, node, workflow_id, started_at, finished_at, error)
       VALUES ($1, $2, $3, $4, $5,
               CASE WHEN $6::float8 IS NOT NULL THEN now() - make_interval(secs => $6::float8) END,
               CASE WHEN $2 IN ('succeeded', 'failed') THEN now() END,
               CASE WHEN $2 = 'failed' THEN 'exit 1' END)
       RETURNING id`,
      [drvPath, fields.status, fields.attempts ?? 1, fields.node ?? null, fields.queued || fields.took !== undefined ? `build/${hex(16)}` : null, fields.took ?? null],
    );
    await database.pool.query(
      `INSERT INTO evaluation_builds (eval_id, build_id, subscribed_at) VALUES ($1, $2, now() - make_interval(secs => $3::float8))`,
      [evalId, rows[0]!.id, (fields.waited ?? 0) + (fields.took ?? 0)],
    );
  }

  before(async () => {
    database = await createTestDatabase();
    temporal = await connectTemporal({ address: requireEnv('TEMPORAL_ADDRESS'), namespace: 'default' });
    tmp = await tempDir('metrics');
    const backend = new LocalDirectoryBackend(join(tmp.dir, 'cache'));
    await backend.put(`${NARINFO_HASH}.narinfo`, Buffer.from('StorePath: /nix/store/x\n'), { contentType: 'text/x-nix-narinfo' });
    await backend.put(NAR_KEY, Buffer.alloc(1000, 7), { contentType: 'application/x-nix-nar' });
    await mkdir(join(tmp.dir, 'cache', `${UNREADABLE_HASH}.narinfo`));

    const alpha = await project('alpha', 100);
    const beta = await project('beta', 300);
    const passed = await evaluation(alpha, 'succeeded', 90);
    const broke = await evaluation(beta, 'failed', 400);
    const running = await evaluation(alpha, 'running');
    await evaluation(beta, 'queued');
    await build(passed, { status: 'succeeded', system: 'x86_64-linux', node: 'b1', waited: 10, took: 40 });
    await build(broke, { status: 'failed', system: 'aarch64-linux', node: 'b2', attempts: 3, waited: 2, took: 5 });
    await build(running, { status: 'building', system: 'x86_64-linux', node: 'b1', waited: 0, took: 1 });
    await build(running, { status: 'pending', system: 'x86_64-linux', queued: true, waited: 600 });
    await build(running, { status: 'pending', system: 'riscv64-linux', features: ['kvm'], queued: true, waited: 30 });
    await build(running, { status: 'pending', system: 'x86_64-linux' });

    await database.pool.query(
      `INSERT INTO nodes (name, systems, max_jobs, draining, last_seen_at) VALUES
         ('b1', '{x86_64-linux}', 4, false, now()),
         ('b2', '{aarch64-linux}', 2, true, now()),
         ('b3', '{x86_64-linux}', 8, false, now() - interval '1 hour')`,
    );
    await database.pool.query('SELECT record_builder_time($1, 3600)', [alpha]);
    // The pending delivery's next attempt is far off: the app's dispatcher leaves it pending.
    await database.pool.query(
      `INSERT INTO forge_deliveries (forge, delivery_id, event, project_id, ref, intent, status, next_attempt_at) VALUES
         ('github', 'd1', 'push', $1, 'refs/heads/main', '{}', 'pending', now() + interval '1 day'),
         ('github', 'd2', 'push', $1, 'refs/heads/main', '{}', 'parked', now()),
         ('gitea', 'd3', 'push', $1, 'refs/heads/main', '{}', 'dispatched', now())`,
      [alpha],
    );
    await database.pool.query(`INSERT INTO forge_statuses (eval_id, context, state, description) VALUES ($1, 'ci', 'pending', 'running')`, [running]);

    const config = await loadServerConfig({ env: { DATABASE_URL: database.url, TEMPORAL_ADDRESS: requireEnv('TEMPORAL_ADDRESS') } });
    app = buildApp({ config, log: createLogger({ level: 'silent' }), deps: { pool: database.pool, temporal, cacheStorage: backend } });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    await temporal?.connection.close();
    await database?.drop();
    await tmp?.remove();
  });

  it('exports the fleet from PostgreSQL in an exposition promtool accepts', async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    const text = response.body;
    const checked = await runPromtool(['check', 'metrics'], text);
    assert.equal(checked.exitCode, 0, checked.output);

    assert.equal(sample(text, 'harmonia_ci_evals_running'), 1);
    assert.equal(sample(text, 'harmonia_ci_evals_queued'), 1);
    assert.ok(sample(text, 'harmonia_ci_eval_oldest_running_seconds') >= 3600);
    assert.equal(sample(text, 'harmonia_ci_eval_duration_seconds_bucket', { project: 'o/alpha', outcome: 'succeeded', le: '60' }), 0);
    assert.equal(sample(text, 'harmonia_ci_eval_duration_seconds_bucket', { project: 'o/alpha', outcome: 'succeeded', le: '120' }), 1);
    assert.equal(sample(text, 'harmonia_ci_eval_duration_seconds_bucket', { project: 'o/beta', outcome: 'failed', le: '300' }), 0);
    assert.equal(sample(text, 'harmonia_ci_eval_duration_seconds_bucket', { project: 'o/beta', outcome: 'failed', le: '600' }), 1);
    assert.equal(sample(text, 'harmonia_ci_eval_duration_seconds_count', { project: 'o/beta', outcome: 'failed' }), 1);
    assert.ok(Math.abs(sample(text, 'harmonia_ci_eval_duration_seconds_sum', { project: 'o/beta', outcome: 'failed' }) - 400) < 1);

    assert.equal(sample(text, 'harmonia_ci_builds', { state: 'queued', system: 'x86_64-linux' }), 2);
    assert.equal(sample(text, 'harmonia_ci_builds', { state: 'running', system: 'x86_64-linux' }), 1);
    assert.equal(sample(text, 'harmonia_ci_builds', { state: 'succeeded', system: 'x86_64-linux' }), 1);
    assert.equal(sample(text, 'harmonia_ci_builds', { state: 'failed', system: 'aarch64-linux' }), 1);
    // The pending build without a workflow waits for its inputs, not for a builder.
    assert.equal(sample(text, 'harmonia_ci_build_queue_depth', { queue: 'build-x86_64-linux', system: 'x86_64-linux' }), 1);
    assert.equal(sample(text, 'harmonia_ci_build_queue_depth', { queue: 'build-riscv64-linux+kvm', system: 'riscv64-linux' }), 1);
    assert.ok(sample(text, 'harmonia_ci_build_queue_oldest_seconds', { queue: 'build-x86_64-linux', system: 'x86_64-linux' }) >= 600);
    assert.equal(sample(text, 'harmonia_ci_build_duration_seconds_bucket', { system: 'x86_64-linux', le: '30' }), 0);
    assert.equal(sample(text, 'harmonia_ci_build_duration_seconds_bucket', { system: 'x86_64-linux', le: '60' }), 1);
    assert.equal(sample(text, 'harmonia_ci_build_duration_seconds_count', { system: 'aarch64-linux' }), 1);
    assert.equal(sample(text, 'harmonia_ci_build_wait_seconds_bucket', { system: 'x86_64-linux', le: '5' }), 1, 'the running build started at once');
    assert.equal(sample(text, 'harmonia_ci_build_wait_seconds_bucket', { system: 'x86_64-linux', le: '15' }), 2);
    assert.equal(sample(text, 'harmonia_ci_build_wait_seconds_bucket', { system: 'x86_64-linux', le: '+Inf' }), 2);

    assert.equal(sample(text, 'harmonia_ci_project_build_retries', { project: 'o/beta' }), 2);
    assert.equal(sample(text, 'harmonia_ci_project_build_failures', { project: 'o/beta' }), 1);
    assert.equal(sample(text, 'harmonia_ci_project_build_failures', { project: 'o/alpha' }), 0);
    assert.equal(sample(text, 'harmonia_ci_project_scheduling_shares', { project: 'o/beta' }), 300);
    assert.ok(Math.abs(sample(text, 'harmonia_ci_project_builder_seconds', { project: 'o/alpha' }) - 3600) < 1);
    assert.equal(sample(text, 'harmonia_ci_project_builder_seconds', { project: 'o/beta' }), 0);

    assert.equal(sample(text, 'harmonia_ci_builder_running_builds', { builder: 'b1' }), 1);
    assert.equal(sample(text, 'harmonia_ci_builder_utilisation', { builder: 'b1' }), 0.25);
    assert.equal(sample(text, 'harmonia_ci_builder_draining', { builder: 'b2' }), 1);
    assert.ok(sample(text, 'harmonia_ci_builder_last_seen_seconds', { builder: 'b3' }) >= 3600);
    assert.equal(sample(text, 'harmonia_ci_builders', { state: 'seen' }), 2);
    assert.equal(sample(text, 'harmonia_ci_builders', { state: 'draining' }), 1);
    assert.equal(sample(text, 'harmonia_ci_builders_available', { system: 'x86_64-linux' }), 1);
    assert.equal(sample(text, 'harmonia_ci_builders_available', { system: 'riscv64-linux' }), 0, 'a system builds wait for and nobody serves');

    assert.equal(sample(text, 'harmonia_ci_webhook_deliveries', { forge: 'github', state: 'pending' }), 1);
    assert.equal(sample(text, 'harmonia_ci_webhook_deliveries', { forge: 'github', state: 'parked' }), 1);
    assert.equal(sample(text, 'harmonia_ci_webhook_deliveries', { forge: 'gitea', state: 'dispatched' }), 1);
    assert.equal(sample(text, 'harmonia_ci_commit_statuses_pending'), 1);
  });

  it('counts cache lookups, hits and misses, the bytes served and failed requests', async () => {
    const before = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.equal((await app.inject({ method: 'GET', url: `/${NARINFO_HASH}.narinfo` })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: `/${'2'.repeat(32)}.narinfo` })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: `/${NAR_KEY}`, headers: { range: 'bytes=100-' } })).statusCode, 206);
    assert.equal((await app.inject({ method: 'GET', url: `/${UNREADABLE_HASH}.narinfo` })).statusCode, 500);
    assert.equal((await app.inject({ method: 'GET', url: '/api/evals/999999999' })).statusCode, 404, 'errors of other routes are not counted');
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const delta = (name: string, labels: Record<string, string>) => sample(text, name, labels) - sample(before, name, labels);
    assert.equal(delta('harmonia_ci_cache_requests_total', { kind: 'narinfo', result: 'hit' }), 1);
    assert.equal(delta('harmonia_ci_cache_requests_total', { kind: 'narinfo', result: 'miss' }), 1);
    assert.equal(delta('harmonia_ci_cache_requests_total', { kind: 'nar', result: 'hit' }), 1);
    assert.equal(delta('harmonia_ci_cache_served_bytes_total', { kind: 'narinfo' }), 'StorePath: /nix/store/x\n'.length);
    assert.equal(delta('harmonia_ci_cache_served_bytes_total', { kind: 'nar' }), 900);
    assert.equal(delta('harmonia_ci_cache_errors_total', {}), 1);
  });

  it('reads PostgreSQL once per refresh interval, however many scrapes ask', async () => {
    let queries = 0;
    const counting = { query: (...args: Parameters<Pool['query']>) => (queries++, database.pool.query(...args)) } as unknown as Pool;
    const metrics = createApiMetrics({ maxAgeMs: 60_000 });
    await Promise.all([metrics.refresh(counting), metrics.refresh(counting)]);
    const once = queries;
    assert.ok(once > 0);
    await metrics.refresh(counting);
    assert.equal(queries, once, 'a scrape within the interval reuses the last read');
    assert.equal(sample(await metrics.registry.metrics(), 'harmonia_ci_evals_running'), 1);
  });
});
