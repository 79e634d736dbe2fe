/**
 * `harmonia-ci run` killed halfway (SIGKILL, workers and all) and started again on the same
 * source resumes its eval: the same eval ends with every job built, none superseded or lost.
 * The short version of the "whole run killed" drill.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunSummary } from '../../cli/run-progress.ts';
import { startCliHarness, waitUntil, writeJobs, type CliHarness } from './harness.ts';

describe('run killed and run again', () => {
  let h: CliHarness;
  before(async () => {
    h = await startCliHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('resumes the same eval and finishes it', async () => {
    const source = join(h.dir, 'resume-source');
    await mkdir(source, { recursive: true });
    const jobs: Record<string, { script?: string; deps?: string[] }> = {};
    for (let i = 0; i < 4; i++) jobs[`first${i}`] = { script: '/bin/sleep 1' };
    for (let i = 0; i < 4; i++) jobs[`second${i}`] = { script: '/bin/sleep 1', deps: [`first${i}`] };
    jobs.last = { deps: ['second0', 'second1', 'second2', 'second3'] };
    const file = await writeJobs(source, jobs);
    // A killed builder's build goes elsewhere after this silence (2 min by default).
    const env = { HARMONIA_CI_LIMITS_BUILDER_HEARTBEAT_TIMEOUT: '5s' };

    const first = h.start(['run', file, '--no-ui', '--json'], env);
    const evalId = await waitUntil(async () => {
      const { rows } = await h.db.pool.query<{ eval_id: string }>(
        `SELECT e.eval_id FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id WHERE b.status = 'succeeded' LIMIT 1`,
      );
      return rows[0] ? String(rows[0].eval_id) : undefined;
    }, 'a first build succeeded', 60_000);
    first.child.kill('SIGKILL');
    await first.exited;

    const again = await h.cli(['run', file, '--no-ui', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`resuming eval ${evalId} of this source`));
    const summary = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as RunSummary;
    assert.equal(summary.eval.id, evalId);
    assert.equal(summary.eval.status, 'succeeded');
    assert.ok(summary.jobs.length === 9 && summary.jobs.every((job) => job.status === 'succeeded'), JSON.stringify(summary.jobs));
    const { rows } = await h.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM evaluations');
    assert.equal(Number(rows[0]!.n), 1, 'no second eval superseded the first');
  });
});
