/**
 * Builders on their own machines: the evaluator and two builders each in a mount namespace of
 * its own with an empty /nix and its own nix-daemon (test/helpers/namespace-host.ts), every role
 * in its own process, our cache in S3 served by `cache serve`. Nothing a build needs may come from
 * another host's disk: the evaluator publishes the `.drv` closure through the signer, builders
 * substitute it and their inputs from the cache.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { readRunSummary, startLocalEval } from '../../cli/run-progress.ts';
import { outcome, writeDag, type DrillContext } from '../drills/common.ts';
import { startFleet, testDrillContext, untilEnded, type Fleet } from '../drills/fleet.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { waitUntil, writeJobset } from './harness.ts';

/** Every file under `dir`, recursively (a store or a state directory). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('fleet: evaluator and builders with stores of their own', () => {
  let context: DrillContext;
  let fleet: Fleet;
  before(async () => {
    context = await testDrillContext('hci-fleet-stores-', { layers: 3, width: 3 });
    fleet = await startFleet(context, 'stores', { ownStores: true, builders: 2 });
  });
  after(async () => {
    await fleet?.stop();
    if (context) await rm(context.root, { recursive: true, force: true });
  });

  it('builds a DAG with a failing branch on two empty builders, and a second eval builds nothing', async () => {
    const file = await writeDag(join(fleet.dir, 'source'), context.shape, fleet.dir, fleet.builtLog);
    const first = await startLocalEval({ client: fleet.client, pool: fleet.pool, path: file });
    const summary = await untilEnded(fleet, first.evalId);
    // d1_0 fails on purpose; d2_0 and d2_2 read it.
    assert.deepEqual(
      Object.fromEntries(summary.jobs.map((job) => [job.attr, job.status])),
      { d2_0: 'dep-failed', d2_1: 'succeeded', d2_2: 'dep-failed' },
      JSON.stringify({ summary, builds: (await fleet.pool.query('SELECT d.name, b.status, b.attempts, b.node, b.error FROM build_jobs b JOIN derivations d USING (drv_path)')).rows }),
    );
    const { rows } = await fleet.pool.query<{ node: string; n: string }>(
      "SELECT node, count(*) AS n FROM build_jobs WHERE status IN ('succeeded', 'failed') GROUP BY node ORDER BY node",
    );
    assert.deepEqual(rows.map((row) => row.node), ['builder-1', 'builder-2'], 'each builder built some of the DAG');

    // What each builder built is in its own store only; the evaluator's store holds no output.
    const evaluatorStore = await readdir(join(fleet.hosts.get('evaluator')!.root, 'nix', 'store'));
    assert.ok(evaluatorStore.some((name) => name.endsWith('-d2_1.drv')), 'the evaluator wrote the .drv files');
    assert.ok(!evaluatorStore.some((name) => name.endsWith('-d0_0')), 'the evaluator built nothing');
    for (const builder of ['builder-1', 'builder-2']) {
      const store = await readdir(join(fleet.hosts.get(builder)!.root, 'nix', 'store'));
      assert.ok(store.some((name) => name.endsWith('.drv')), `${builder} substituted .drv files from the cache`);
    }

    const builtOnce = (await readFile(fleet.builtLog, 'utf8')).split('\n').filter(Boolean);
    assert.equal(new Set(builtOnce).size, builtOnce.length, `built twice in the first eval: ${builtOnce.join(' ')}; ${JSON.stringify((await fleet.pool.query('SELECT drv_path, status, attempts, node, error FROM build_jobs')).rows)}`);
    const again = await startLocalEval({ client: fleet.client, pool: fleet.pool, path: file });
    const second = await untilEnded(fleet, again.evalId);
    assert.deepEqual(second.jobs.map((job) => job.status), summary.jobs.map((job) => job.status));
    const judged = await outcome({ builtLog: fleet.builtLog, db: { pool: fleet.pool } }, await readRunSummary(fleet.pool, again.evalId), 0, fleet.cache);
    assert.deepEqual(judged.builtTwice, [], 'nothing was built again');
    assert.equal(judged.narinfosWithoutNar, 0);
    // 6 outputs, and the 9 .drv files the builders needed.
    assert.equal(judged.narinfos, 6 + 9);
  });

  it('finishes on the other builder a build whose host was SIGKILLed mid-build', async () => {
    const path = await writeJobset(fleet.dir, { victim: { script: 'echo started; /bin/sleep 4' } });
    const { evalId } = await startLocalEval({ client: fleet.client, pool: fleet.pool, path });
    const nodeOf = async () =>
      (await fleet.pool.query<{ node: string | null; status: string }>("SELECT b.node, b.status FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = 'victim'")).rows[0];
    await waitUntil(async () => (await nodeOf())?.status === 'building', 'the victim builds');
    const first = (await nodeOf())!.node!;
    // The whole host goes: its builder, its nix-daemon and the build itself.
    await fleet.kill(first);
    const summary = await untilEnded(fleet, evalId);
    assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded']);
    const { rows } = await fleet.pool.query<{ node: string; attempts: number }>("SELECT b.node, b.attempts FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = 'victim'");
    assert.notEqual(rows[0]!.node, first, 'the other builder finished it');
    assert.equal(rows[0]!.attempts, 2);
    await fleet.start('builder', first);
  });

  it('replaces an input a builder holds with other contents than the cache (Frankenbuild) before building on it', async () => {
    // `base` differs with every build ($$); `user` copies it into its own output.
    const path = join(fleet.dir, `franken-${randomUUID().slice(0, 8)}.nix`);
    const job = (name: string, script: string, inputs = ''): string =>
      `${name} = builtins.derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; nonce = "${randomUUID()}"; ${inputs} };`;
    await writeFile(path, `rec {\n  ${job('base', 'echo pid $$ > $out')}\n  ${job('user', 'read line < $base; echo "$line" > $out; echo $base >> $out', 'inherit base;')}\n}\n`);
    // Each builder builds its own `base` first, straight through its own daemon, as if it had built it for a job of its own.
    const own = new Map<string, string>();
    for (const builder of ['builder-1', 'builder-2']) {
      const env = { ...process.env, ...fleet.hosts.get(builder)!.env };
      const built = await execa('nix-build', ['--option', 'build-users-group', '', '--option', 'substituters', '', '--no-out-link', path, '-A', 'base'], { env });
      own.set(builder, await readFile(join(fleet.hosts.get(builder)!.root, built.stdout.trim()), 'utf8'));
    }
    assert.notEqual(own.get('builder-1'), own.get('builder-2'), 'the two builders hold different contents at one path');

    const first = await startLocalEval({ client: fleet.client, pool: fleet.pool, path, attrs: ['base'] });
    assert.deepEqual((await untilEnded(fleet, first.evalId)).jobs.map((job) => job.status), ['succeeded']);
    const canonicalOn = (await fleet.pool.query<{ node: string }>("SELECT b.node FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name = 'base'")).rows[0]!.node;
    const other = canonicalOn === 'builder-1' ? 'builder-2' : 'builder-1';
    const baseName = (await readdir(join(fleet.hosts.get(canonicalOn)!.root, 'nix', 'store'))).find((name) => name.endsWith('-base'))!;
    const canonical = await readFile(join(fleet.hosts.get(canonicalOn)!.root, 'nix', 'store', baseName), 'utf8');
    assert.notEqual(canonical, own.get(other), `${other}'s base is not the one in the cache`);
    // Only the builder whose `base` differs from the cache's is left to build `user`.
    await fleet.kill(canonicalOn);
    try {
      const second = await startLocalEval({ client: fleet.client, pool: fleet.pool, path });
      const summary = await untilEnded(fleet, second.evalId);
      assert.deepEqual(Object.fromEntries(summary.jobs.map((job) => [job.attr, job.status])), { base: 'succeeded', user: 'succeeded' });
      const store = join(fleet.hosts.get(other)!.root, 'nix', 'store');
      const names = await readdir(store);
      const user = names.find((name) => name.endsWith('-user'))!;
      assert.equal(await readFile(join(store, baseName), 'utf8'), canonical, `${other} now holds the cache's base`);
      assert.equal((await readFile(join(store, user), 'utf8')).split('\n')[0]!, canonical.trim(), 'user was built against the canonical base');
    } finally {
      await fleet.start('builder', canonicalOn);
    }
  });

  it('runs the bundled example through builders that share no store', async () => {
    const { evalId } = await startLocalEval({ client: fleet.client, pool: fleet.pool, path: join(PROJECT_ROOT, 'examples') });
    const summary = await untilEnded(fleet, evalId);
    const statuses = Object.fromEntries(summary.jobs.map((job) => [job.attr.split('.').at(-1)!, job.status]));
    assert.deepEqual(statuses, { app: 'succeeded', docs: 'succeeded', 'flaky-test': 'failed', greeting: 'succeeded', library: 'succeeded', release: 'dep-failed' }, JSON.stringify(summary));
  });

  it('never gives a builder the signing key or the storage credentials', async () => {
    const secrets = await Promise.all(['signing-key', 's3-credentials'].map((name) => readFile(join(fleet.dir, 'secrets', name), 'utf8')));
    const needles = secrets.flatMap((text) => text.split(/\s+/).filter((word) => word.length >= 20));
    for (const builder of ['builder-1', 'builder-2']) {
      const handle = fleet.roles.get(builder)!;
      const environ = await readFile(`/proc/${handle.child.pid}/environ`, 'utf8');
      for (const name of ['HARMONIA_CI_CACHE_SIGNING_KEY_FILE', 'HARMONIA_CI_S3_CREDENTIALS_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
        assert.ok(!environ.includes(`${name}=`), `${builder} has ${name} in its environment`);
      }
      for (const path of [...(await filesUnder(join(fleet.dir, builder))), ...(await filesUnder(join(fleet.hosts.get(builder)!.root, 'nix', 'store')))]) {
        const text = await readFile(path, 'latin1');
        for (const needle of needles) assert.ok(!text.includes(needle), `${path} holds a secret`);
      }
    }
  });
});
