/**
 * Jobsets written for Hydra, through `harmonia-ci run --json` as a user switching over runs them
 * (test/cli/fixtures/hydra-jobset.nix): one run against the runner's Temporal, PostgreSQL and
 * nix-daemon, shared by every case.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../../api/app.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import type { RunJob, RunSummary } from '../../cli/run-progress.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
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

  it('keeps, signs and serves the output of a build that marked itself failed, and builds its dependents', async () => {
    const report = jobs.report!;
    assert.equal(report.status, 'failed-with-output', JSON.stringify(report));
    const out = report.outputs.out!;
    assert.match(await readFile(join(out, 'report.txt'), 'utf8'), /2 of 3 tests passed/);
    const narinfo = await readFile(join(h.dir, 'cache', `${out.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`), 'utf8');
    assert.match(narinfo, new RegExp(`^StorePath: ${out}$`, 'm'));
    assert.match(narinfo, /^Sig: /m);
    assert.equal(jobs['uses-report']?.status, 'succeeded', 'dep-failed does not pass through failed-with-output');
    assert.match(stderr, /failed-with-output report/);
  });

  it('lists build products and serves each file from the cache, with ranges, and nothing outside them', async () => {
    const manual = jobs.manual!;
    assert.equal(manual.status, 'succeeded', JSON.stringify(manual));
    const out = manual.outputs.out!;
    const app = buildApp({
      config: await loadServerConfig({ env: h.env }),
      log: createLogger({ level: 'silent' }),
      deps: { pool: h.db.pool, temporal: h.client, cacheStorage: new LocalDirectoryBackend(join(h.dir, 'cache')) },
    });
    try {
      const hash = manual.drvPath!.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const detail = await app.inject(`/api/builds/${hash}`);
      assert.equal(detail.statusCode, 200, detail.body);
      const products = (detail.json() as { products: Array<{ type: string; subtype: string; path: string; name: string; url: string; fileSize?: number; sha256?: string; defaultPath?: string }> }).products;
      assert.deepEqual(
        products.map((p) => [p.type, p.subtype, p.path, p.name, p.defaultPath ?? null]),
        [
          ['file', 'doc', `${out}/release notes.txt`, 'release notes.txt', null],
          ['doc', 'manual', `${out}/share/doc`, 'doc', 'index.html'],
        ],
      );
      const notes = 'release notes of the jobset\n';
      assert.equal(products[0]!.fileSize, notes.length);
      assert.equal(products[0]!.sha256, createHash('sha256').update(notes).digest('hex'));
      assert.match(products[0]!.url, /\/release%20notes\.txt$/);

      const whole = await app.inject(products[0]!.url);
      assert.equal(whole.statusCode, 200, whole.body);
      assert.equal(whole.body, notes);
      assert.match(String(whole.headers['content-disposition']), /^attachment; filename\*=UTF-8''release%20notes\.txt$/);
      const part = await app.inject({ url: products[0]!.url, headers: { range: 'bytes=8-12' } });
      assert.equal(part.statusCode, 206);
      assert.equal(part.body, notes.slice(8, 13));
      assert.equal(part.headers['content-range'], `bytes 8-12/${notes.length}`);
      const tail = await app.inject({ url: products[0]!.url, headers: { range: 'bytes=-7' } });
      assert.equal(tail.body, notes.slice(-7));
      assert.equal((await app.inject({ url: products[0]!.url, headers: { range: 'bytes=999-' } })).statusCode, 416);
      // A file inside a directory product, its default page.
      const page = await app.inject(products[1]!.url);
      assert.equal(page.statusCode, 200, page.body);
      assert.equal(page.body, '<h1>manual</h1>\n');
      assert.equal(page.headers['content-type'], 'application/octet-stream');

      const base = `/api/builds/${hash}/products/${out.slice('/nix/store/'.length)}`;
      for (const [url, code] of [
        [`${base}/escape`, 404],
        [`${base}/nix-support/hydra-build-products`, 404],
        // Dot segments, encoded or not, are resolved before routing: what is left is no product.
        [`${base}/share/doc/../../nix-support/hydra-build-products`, 404],
        [`${base}/share/doc/%2E%2E/%2E%2E/escape`, 404],
        [`/api/builds/${hash}/products/etc/passwd`, 400],
      ] as const) {
        const response = await app.inject(url);
        assert.equal(response.statusCode, code, `${url}: ${response.body}`);
      }
    } finally {
      await app.close();
    }
  });

  it('ends a build at its meta.timeout and meta.maxSilent, below the server limits', () => {
    assert.equal(jobs.slow?.status, 'timed-out', JSON.stringify(jobs.slow));
    assert.equal(jobs.quiet?.status, 'timed-out', JSON.stringify(jobs.quiet));
    assert.match(stderr, /slow: build exceeded its wall-clock limit of 2 s \(the job's meta\.timeout\)/);
    assert.match(stderr, /quiet: build printed nothing for 2 s \(max silence: the job's meta\.maxSilent\)/);
  });

  it('shows a job page with its meta, and the aggregates as a group on the eval page', async () => {
    const app = buildApp({ config: await loadServerConfig({ env: h.env }), log: createLogger({ level: 'silent' }), deps: { pool: h.db.pool, temporal: h.client, cacheStorage: null } });
    try {
      const job = await app.inject(`/ci/evals/${summary.eval.id}/jobs/slow`);
      assert.equal(job.statusCode, 200, job.body);
      assert.match(job.body, /stops after two seconds/);
      assert.match(job.body, /<dt>Maintainers<\/dt><dd>Ann Example<\/dd>/);
      assert.match(job.body, /<dt>License<\/dt><dd>MIT<\/dd>/);
      assert.match(job.body, /<dt>Timeout<\/dt><dd>2 s <span class="muted">\(meta\.timeout/);
      const nested = await app.inject(`/ci/evals/${summary.eval.id}/jobs/${encodeURIComponent('nested.deeper.leaf')}`);
      assert.equal(nested.statusCode, 200);
      assert.equal((await app.inject(`/ci/evals/${summary.eval.id}/jobs/no.such.job`)).statusCode, 404);

      const page = await app.inject(`/ci/evals/${summary.eval.id}`);
      const group = /<section class="panel" id="aggregates">([\s\S]*?)<\/section>/.exec(page.body)?.[1] ?? '';
      assert.match(group, /release-broken<\/a><\/span> <span class="st s-failed">/);
      assert.match(group, /<span class="st s-failed">.*<\/span> <a href="[^"]*\/jobs\/broken" class="mono">broken<\/a>/);
      assert.match(group, /<span class="st s-succeeded">.*<\/span> <a href="[^"]*\/jobs\/nested\.deeper\.leaf" class="mono">nested\.deeper\.leaf<\/a>/);
    } finally {
      await app.close();
    }
  });

  it('refuses a content-addressed derivation as an error of its job, naming the reason', () => {
    const job = jobs['content-addressed']!;
    assert.equal(job.status, 'failed');
    assert.equal(job.drvPath, null);
    assert.match(job.error ?? '', /content-addressed derivations \(`__contentAddressed = true`\) need Nix's experimental feature 'ca-derivations', which harmonia-ci does not support/);
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
