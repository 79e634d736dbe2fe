/**
 * A burst of GitHub webhook deliveries over HTTP to the API on a port (the short version of the
 * 500-delivery drill): pushes to three branches, redeliveries and bad signatures mixed in. Bad
 * signatures are refused and stored nothing, redeliveries are stored once, every branch ends
 * with an eval of its last push and final statuses on the forge, and what the branches share is
 * built once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readRunSummary } from '../../cli/run-progress.ts';
import { checkWebhookBurst, sendWebhookBurst } from './burst.ts';
import { commitJobs, enableRepository, setRef, startGitHubStack, SYSTEM, type GitHubStack } from './support.ts';

describe('GitHub: a burst of webhook deliveries over HTTP', () => {
  let stack: GitHubStack;
  before(async () => {
    stack = await startGitHubStack({ listen: true });
    await enableRepository(stack);
  });
  after(async () => {
    await stack?.close();
  });

  it('refuses bad signatures, stores redeliveries once, and ends every branch with its last push built once', async () => {
    const built = join(stack.pipeline.dir, 'built');
    await writeFile(built, '');
    const nonce = randomUUID();
    const job = (name: string) => `echo ${name} >> ${built}`;
    const first = await commitJobs(stack.repo.dir, { early: job('early') }, { nonce });
    const last = await commitJobs(stack.repo.dir, { early: job('early'), shared: job('shared'), other: job('other') }, { nonce });
    const refs = ['refs/heads/one', 'refs/heads/two', 'refs/heads/three'];
    for (const ref of refs) setRef(stack.repo.dir, ref, last.sha);
    const plan = { refs, commits: [first, last], deliveries: 60, seconds: 2, badShare: 0.25 };

    const sent = await sendWebhookBurst(stack, plan);
    const kinds = new Set(sent.map((s) => s.kind));
    assert.deepEqual([...kinds].sort(), ['missing signature', 'push', 'redelivery', 'tampered body', 'wrong secret'], 'the burst mixes every kind');
    const figures = await checkWebhookBurst(stack, plan, sent, 120_000);
    assert.equal(figures.stored, 6);
    assert.equal(figures.refused, 15);
    assert.deepEqual(figures.finalStatuses, { 'harmonia-ci/nix-eval': 'success', 'harmonia-ci/nix-build': 'success' });

    for (const evalId of figures.lastEvals.values()) {
      const summary = await readRunSummary(stack.pipeline.db.pool, evalId);
      assert.deepEqual(
        summary.jobs.map((j) => `${j.attr} ${j.status}`).sort(),
        ['early', 'other', 'shared'].map((name) => `ciJobs.${SYSTEM}.${name} succeeded`),
      );
    }
    const names = (await readFile(built, 'utf8')).split('\n').filter(Boolean).sort();
    assert.deepEqual(names, ['early', 'other', 'shared'], 'each derivation built once across the three branches');
  });
});
