/**
 * Jobsets written for Hydra, through `harmonia-ci run --json` as a user switching over runs them
 * (test/cli/fixtures/hydra-jobset.nix): one run against the runner's Temporal, PostgreSQL and
 * nix-daemon, shared by every case.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunJob, RunSummary } from '../../cli/run-progress.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { startCliHarness, type CliHarness } from './harness.ts';

const FIXTURE = join(PROJECT_ROOT, 'test', 'cli', 'fixtures', 'hydra-jobset.nix');

describe('Hydra jobsets through run --json', { timeout: 120_000 }, () => {
  let h: CliHarness;
  let code: number | null;
  let stderr: string;
  let summary: RunSummary;
  let jobs: Record<string, RunJob>;

  before(async () => {
    h = await startCliHarness();
    // A nonce per run: nothing is cached from an earlier run of this file.
    const file = join(h.dir, 'jobset.nix');
    await writeFile(file, `import ${FIXTURE} { nonce = "${randomUUID()}"; }\n`);
    const result = await h.cli(['run', file, '--state-dir', join(h.dir, 'run-state'), '--no-ui', '--json']);
    code = result.code;
    stderr = result.stderr;
    summary = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? 'null') as RunSummary;
    assert.ok(summary, `no summary: ${stderr}`);
    jobs = Object.fromEntries(summary.jobs.map((job) => [job.attr, job]));
  });
  after(async () => {
    await h?.close();
  });

  it('builds nested attribute sets and fails the run on a failed job', () => {
    assert.equal(code, 1, stderr);
    assert.equal(summary.eval.status, 'succeeded');
    assert.equal(jobs.ok?.status, 'succeeded');
    assert.equal(jobs['nested.deeper.leaf']?.status, 'succeeded');
    assert.equal(jobs.broken?.status, 'failed');
    assert.equal(jobs.helper, undefined, 'a dependency that is no job is not listed as one');
  });

  it('resolves aggregate constituents given as derivations and as nested names', () => {
    const release = jobs.release!;
    assert.equal(release.status, 'succeeded', JSON.stringify(release));
    assert.deepEqual(
      release.constituents?.map((c) => [c.attr, c.status]),
      [
        ['nested.deeper.leaf', 'succeeded'],
        ['ok', 'succeeded'],
        [null, 'succeeded'],
      ],
    );
    const helper = release.constituents!.find((c) => c.attr === null)!;
    assert.match(helper.drvPath, /-helper\.drv$/);
  });

  it('fails an aggregate whose constituent failed, naming it', () => {
    const aggregate = jobs['release-broken']!;
    assert.equal(aggregate.status, 'failed');
    assert.match(aggregate.error ?? '', /constituents failed: broken \(failed\)/);
    assert.deepEqual(aggregate.constituents?.map((c) => [c.attr, c.status]), [['ok', 'succeeded'], ['broken', 'failed']]);
  });

  it('reports a missing name and a cycle as errors of the aggregates alone', () => {
    const missing = jobs['release-missing']!;
    assert.equal(missing.status, 'failed');
    assert.equal(missing.drvPath, null);
    assert.match(missing.error ?? '', /constituent 'no\.such\.job' names no job of this evaluation/);
    for (const name of ['cycle-a', 'cycle-b']) {
      assert.equal(jobs[name]?.status, 'failed');
      assert.match(jobs[name]?.error ?? '', /cycle: (cycle-a → cycle-b → cycle-a|cycle-b → cycle-a → cycle-b)/);
    }
  });
});
