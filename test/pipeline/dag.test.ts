/** The eval → build pipeline on real Temporal, PostgreSQL and nix-daemon: DAG order and failures. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { buildWorkflowId } from '../../workflows/definitions.ts';
import { startPipeline, writeJobset, type Pipeline } from './harness.ts';
import { schedulerViolations } from './invariants.ts';

describe('pipeline: DAG', () => {
  let pipeline: Pipeline;
  before(async () => {
    pipeline = await startPipeline();
  });
  after(async () => {
    await pipeline?.close();
  });

  it('builds inputs before their dependents, and each output sees its inputs', async () => {
    // Each job records when it ran; a dependent must run after everything it depends on.
    const stamp = (name: string) => `echo ${name} >> ${pipeline.dir}/order`;
    const file = await writeJobset(pipeline.dir, {
      a: { script: stamp('a') },
      b: { script: stamp('b'), deps: ['a'] },
      c: { script: stamp('c'), deps: ['a'] },
      d: { script: stamp('d'), deps: ['b', 'c'] },
    });
    const summary = await pipeline.run(file);
    assert.equal(summary.eval.status, 'succeeded');
    assert.deepEqual(
      summary.jobs.map((j) => [j.attr, j.status]),
      [['a', 'succeeded'], ['b', 'succeeded'], ['c', 'succeeded'], ['d', 'succeeded']],
    );
    const order = (await readFile(`${pipeline.dir}/order`, 'utf8')).trim().split('\n');
    assert.equal(order[0], 'a');
    assert.equal(order.at(-1), 'd');
    assert.deepEqual([...order].sort(), ['a', 'b', 'c', 'd']);
    assert.deepEqual(await schedulerViolations(pipeline.db.pool, [summary.eval.id]), []);
    const dOut = await readFile(summary.jobs.find((j) => j.attr === 'd')!.outputs.out!, 'utf8');
    assert.match(dOut, /^b=\/nix\/store\/.*-b$/m);
    assert.match(dOut, /^c=\/nix\/store\/.*-c$/m);
  });

  it('marks dependents of a failed build dep-failed, naming the root cause, while unrelated jobs succeed', async () => {
    const file = await writeJobset(pipeline.dir, {
      base: {},
      broken: { deps: ['base'], fail: true },
      middle: { deps: ['broken'] },
      top: { deps: ['middle', 'base'] },
      other: {},
    });
    const summary = await pipeline.run(file);
    const status = Object.fromEntries(summary.jobs.map((j) => [j.attr, j.status]));
    assert.deepEqual(status, { base: 'succeeded', broken: 'failed', middle: 'dep-failed', top: 'dep-failed', other: 'succeeded' });

    const brokenDrv = summary.jobs.find((j) => j.attr === 'broken')!.drvPath;
    const { rows } = await pipeline.db.pool.query<{ name: string; dep_failed_drv_path: string | null; attempts: number }>(
      `SELECT d.name, b.dep_failed_drv_path, b.attempts FROM build_jobs b JOIN derivations d USING (drv_path)
        WHERE d.name IN ('middle', 'top', 'broken') ORDER BY d.name`,
    );
    assert.deepEqual(
      rows.map((r) => [r.name, r.dep_failed_drv_path]),
      [['broken', null], ['middle', brokenDrv], ['top', brokenDrv]],
    );
    assert.deepEqual(await schedulerViolations(pipeline.db.pool, [summary.eval.id]), []);
    // The invariants' check does catch a root cause that is not a failure of its own.
    const baseDrv = summary.jobs.find((j) => j.attr === 'base')!.drvPath;
    await pipeline.db.pool.query('UPDATE build_jobs SET dep_failed_drv_path = $1 WHERE dep_failed_drv_path = $2', [baseDrv, brokenDrv]);
    const broken = await schedulerViolations(pipeline.db.pool, [summary.eval.id]);
    await pipeline.db.pool.query('UPDATE build_jobs SET dep_failed_drv_path = $2 WHERE dep_failed_drv_path = $1', [baseDrv, brokenDrv]);
    assert.deepEqual(broken.map((v) => v.invariant), Array(2).fill('a dep-failed build names a root cause that failed by itself'));
    // A build that failed by itself is not retried.
    assert.equal(rows.find((r) => r.name === 'broken')!.attempts, 1);
    const history = pipeline.client.workflow.getHandle(buildWorkflowId(brokenDrv!)).fetchHistory();
    const scheduled = (await history).events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'buildDerivation');
    assert.equal(scheduled.length, 1);
    // The dependents never reached a builder.
    const tail = await pipeline.db.pool.query(
      `SELECT 1 FROM build_log_tails t JOIN build_jobs b ON b.id = t.build_id JOIN derivations d USING (drv_path) WHERE d.name IN ('middle', 'top')`,
    );
    assert.equal(tail.rowCount, 0);
  });

  it('keeps the failed build failed on the next eval instead of building it again', async () => {
    const file = await writeJobset(pipeline.dir, { lonely: { fail: true } });
    const first = await pipeline.run(file);
    assert.equal(first.jobs[0]!.status, 'failed');
    const second = await pipeline.run(file);
    assert.equal(second.jobs[0]!.status, 'failed');
    const { rows } = await pipeline.db.pool.query<{ attempts: number }>('SELECT attempts FROM build_jobs WHERE drv_path = $1', [
      first.jobs[0]!.drvPath,
    ]);
    assert.equal(rows[0]!.attempts, 1);
  });

  it('fails an eval with a broken expression cleanly, keeping no attribute results', async () => {
    const file = `${pipeline.dir}/broken.nix`;
    await import('node:fs/promises').then((fs) => fs.writeFile(file, '{ a = builtins.derivation { name = "a"; }; b = ; }'));
    const summary = await pipeline.run(file);
    assert.equal(summary.eval.status, 'failed');
    assert.match(summary.eval.error ?? '', /syntax error|unexpected/);
    assert.deepEqual(summary.jobs, []);
  });

  it('makes one eval when the same push arrives twice', async () => {
    const file = await writeJobset(pipeline.dir, { once: {} });
    const sha = 'ab'.repeat(20);
    const first = await pipeline.run(file, { sha });
    const again = await pipeline.run(file, { sha });
    assert.equal(again.eval.id, first.eval.id);
    const { rows } = await pipeline.db.pool.query('SELECT id FROM evaluations WHERE commit_sha = $1', [sha]);
    assert.equal(rows.length, 1);
  });

  it('builds a derivation that two attributes name once, and records both attributes', async () => {
    const file = await writeJobset(pipeline.dir, { shared: {}, other: {} });
    // An alias, as jobsets often have (`hydraJobs.default = hydraJobs.shared`): one derivation, two attributes.
    await writeFile(file, (await readFile(file, 'utf8')).replace(/in jobs\n$/, 'in jobs // { alias = jobs.shared; }\n'));
    const summary = await pipeline.run(file);
    assert.equal(summary.eval.status, 'succeeded', summary.eval.error ?? '');
    const byAttr = Object.fromEntries(summary.jobs.map((j) => [j.attr, j]));
    assert.deepEqual(Object.keys(byAttr).sort(), ['alias', 'other', 'shared']);
    assert.equal(byAttr.alias!.drvPath, byAttr.shared!.drvPath);
    assert.equal(byAttr.alias!.status, 'succeeded');
    const { rows } = await pipeline.db.pool.query('SELECT count(*)::int AS n FROM build_jobs WHERE drv_path = $1', [byAttr.shared!.drvPath]);
    assert.deepEqual(rows, [{ n: 1 }]);
  });
});
