/**
 * `harmonia-ci worker builder` as a real process with no database credentials, against the
 * runner's Temporal, PostgreSQL and nix-daemon: it registers and heartbeats through the node
 * workflow, honours --max-jobs, drains on `harmonia-ci drain` (the running build finishes, nothing
 * new is taken, --undo resumes) and on SIGTERM (the running build finishes and is uploaded).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureLocalProject } from '../../forges/projects.ts';
import { startCliHarness, waitUntil, writeJobs, type CliHarness, type CliProcess } from './harness.ts';

interface BuildRow {
  name: string;
  drv_path: string;
  status: string;
  node: string | null;
  started_at: Date | null;
  finished_at: Date | null;
}

describe('worker builder', { timeout: 120_000 }, () => {
  let h: CliHarness;
  let builder: CliProcess;
  let project: string;
  const node = `cli-builder-${randomUUID().slice(0, 6)}`;

  const builds = async (evalId: string): Promise<Map<string, BuildRow>> => {
    const { rows } = await h.db.pool.query<BuildRow>(
      `SELECT d.name, b.drv_path, b.status, b.node, b.started_at, b.finished_at
         FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id JOIN derivations d ON d.drv_path = b.drv_path
        WHERE e.eval_id = $1`,
      [evalId],
    );
    return new Map(rows.map((row) => [row.name, row]));
  };
  const waitForStatus = (evalId: string, name: string, status: string, timeoutMs = 30_000): Promise<BuildRow> =>
    waitUntil(async () => {
      const row = (await builds(evalId)).get(name);
      return row?.status === status ? row : undefined;
    }, `${name} is ${status}`, timeoutMs);
  /** A job that runs until the test releases it, so what runs when is up to the test, not to timing. */
  const gated = (name: string): { script: string } => ({
    script: `echo ${name} starts; while [ ! -e ${h.dir}/release-${name} ]; do /bin/sleep 0.1; done; echo ${name} ends`,
  });
  const release = (name: string): Promise<void> => writeFile(join(h.dir, `release-${name}`), '');
  const evaluate = async (file: string, ref: string): Promise<string> => {
    const result = await h.cli(['eval', file, '--project', project, '--ref', ref]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\d+\n$/);
    return result.stdout.trim();
  };

  before(async () => {
    h = await startCliHarness();
    const workers = await h.startWorkers();
    project = await ensureLocalProject(h.db.pool, h.dir, undefined);
    // No DATABASE_URL: a builder holds no database credentials (docs/architecture.md, "Trust").
    builder = h.start(
      ['worker', 'builder', '--host', node, '--systems', 'x86_64-linux', '--features', '', '--max-jobs', '1', '--heartbeat-interval', '1'],
      { DATABASE_URL: '', HARMONIA_CI_CACHE_PUBLIC_KEYS: workers.cache!.publicKey },
    );
    await builder.waitFor(/taking builds from build-x86_64-linux/);
  });
  after(async () => {
    await h?.close();
  });

  it('registers in nodes through its heartbeats, and `nodes` lists it', async () => {
    const row = await waitUntil(async () => {
      const { rows } = await h.db.pool.query('SELECT * FROM nodes WHERE name = $1', [node]);
      return rows[0];
    }, 'the builder has registered');
    assert.deepEqual(row.systems, ['x86_64-linux']);
    assert.deepEqual(row.features, []);
    assert.equal(row.max_jobs, 1);
    assert.equal(row.draining, false);
    assert.match(row.version, /^\d+\.\d+\.\d+/);
    // Heartbeats keep coming (every second here).
    const seen = row.last_seen_at as Date;
    await waitUntil(async () => {
      const { rows } = await h.db.pool.query<{ last_seen_at: Date }>('SELECT last_seen_at FROM nodes WHERE name = $1', [node]);
      return rows[0]!.last_seen_at > seen ? true : undefined;
    }, 'a later heartbeat');

    const listed = await h.cli(['nodes', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const nodes = JSON.parse(listed.stdout) as Array<{ name: string; maxJobs: number; running: number; draining: boolean }>;
    assert.deepEqual(
      nodes.filter((n) => n.name === node).map((n) => [n.maxJobs, n.running, n.draining]),
      [[1, 0, false]],
    );
    const table = await h.cli(['nodes']);
    assert.match(table.stdout, new RegExp(`^${node}\\s+up\\s+x86_64-linux\\s+-\\s+1\\s+0\\s`, 'm'));
  });

  it('runs one build at a time, drains on `drain` (the running build finishes, nothing new starts) and resumes on --undo', async () => {
    const file = await writeJobs(h.dir, { first: gated('first'), second: gated('second') });
    const evalId = await evaluate(file, 'refs/heads/drain');
    const running = await waitUntil(async () => [...(await builds(evalId)).values()].find((b) => b.status === 'building'), 'a build runs');
    assert.equal(running.node, node);
    const other = running.name === 'first' ? 'second' : 'first';

    const drained = await h.cli(['drain', node]);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /draining; 1 running build\(s\) finish/);
    await builder.waitFor(/draining \(harmonia-ci drain\): 1 running build/, 10_000);
    const { rows } = await h.db.pool.query<{ draining: boolean }>('SELECT draining FROM nodes WHERE name = $1', [node]);
    assert.equal(rows[0]!.draining, true);
    // --max-jobs 1: all this while the builder ran one build, the other waited.
    assert.equal((await builds(evalId)).get(other)!.status, 'pending', builder.output());

    await release(running.name);
    const finished = await waitForStatus(evalId, running.name, 'succeeded');
    await builder.waitFor(/drained: no build running/, 10_000);
    await release(other);
    // While these commands run (seconds), the idle but drained builder takes nothing.
    const [listed, logs] = await Promise.all([h.cli(['nodes', '--json']), h.cli(['logs', finished.drv_path])]);
    assert.equal((await builds(evalId)).get(other)!.status, 'pending', builder.output());
    assert.equal((JSON.parse(listed.stdout) as Array<{ name: string; draining: boolean }>).find((n) => n.name === node)!.draining, true);
    // The live log went through the node workflow (the builder has no database) into build_log_tails.
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, new RegExp(`${running.name} starts\n${running.name} ends\n`));

    const undone = await h.cli(['drain', node, '--undo']);
    assert.equal(undone.code, 0, undone.stderr);
    const later = await waitForStatus(evalId, other, 'succeeded');
    assert.equal(later.node, node);
    assert.ok(later.started_at! >= finished.finished_at!, 'the builds ran one after the other');
  });

  it('on SIGTERM finishes and uploads the running build, takes nothing new, and exits 0', async () => {
    const file = await writeJobs(h.dir, { long: gated('long'), queued: gated('queued') });
    const evalId = await evaluate(file, 'refs/heads/sigterm');
    const running = await waitUntil(async () => [...(await builds(evalId)).values()].find((b) => b.status === 'building'), 'a build runs');
    const queued = running.name === 'long' ? 'queued' : 'long';
    builder.child.kill('SIGTERM');
    await builder.waitFor(/stopping: 1 running build\(s\) finish first/, 10_000);
    // Still there, waiting for its build.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(builder.child.exitCode, null, builder.output());
    await release(running.name);
    await release(queued);

    assert.equal(await builder.exited, 0, builder.output());
    // With no builder left, the build can only succeed if its upload ran here before the exit:
    // the host queue outlived the build queues. The signer publishes it after.
    await waitForStatus(evalId, running.name, 'succeeded');
    assert.equal((await builds(evalId)).get(queued)!.status, 'pending');
  });
});

describe('worker entry points', { timeout: 60_000 }, () => {
  let h: CliHarness;
  before(async () => {
    h = await startCliHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('run a role until SIGTERM, and fail with a message naming what is missing', async () => {
    const coordinator = h.start(['worker', 'coordinator']);
    const [noDatabase, unknown] = await Promise.all([h.cli(['worker', 'evaluator'], { DATABASE_URL: '' }), h.cli(['worker', 'gardener'])]);
    assert.equal(noDatabase.code, 1);
    assert.match(noDatabase.stderr, /the evaluator needs PostgreSQL: set DATABASE_URL or database\.url/);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown role "gardener"; expected one of coordinator, evaluator, builder, signer/);

    await coordinator.waitFor(/coordinator worker running against Temporal/);
    coordinator.child.kill('SIGTERM');
    assert.equal(await coordinator.exited, 0, `${coordinator.child.signalCode} ${coordinator.output()}`);
    assert.match(coordinator.output(), /SIGTERM: stopping gracefully(.|\n)*"stopped"/);
  });
});
