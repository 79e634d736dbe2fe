/**
 * The dashboard pages, rendered by the real app from rows a real pipeline wrote (Temporal,
 * PostgreSQL, nix-daemon builds): statuses, failures first, root causes, the failed build's log
 * tail, escaping of hostile attribute names, errors and logs, pagination and 404s.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { execa } from 'execa';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { after, before, describe, it } from 'node:test';
import type { RunSummary } from '../../cli/run-progress.ts';
import { listEvalPage } from '../../queries/index.ts';
import { HOSTILE, startDashboard, TEMPORAL_UI, writeMixedJobset, type Dashboard } from './support.ts';

const hashOf = (drvPath: string): string => drvPath.slice(drvPath.lastIndexOf('/') + 1).slice(0, 32);

/** The rows of the jobs table as [attr text, data-state], in page order. */
function jobRows(page: string): Array<[string, string]> {
  const body = page.slice(page.indexOf('<tbody id="jobs">'), page.indexOf('</tbody>', page.indexOf('<tbody id="jobs">')));
  return [...body.matchAll(/<tr id="job-[0-9a-f]+" data-state="([a-z-]+)" data-rank="\d">\s*<td class="attr mono">(?:<a [^>]*>)?([^<]*)/g)].map((m) => [m[2]!, m[1]!]);
}

describe('dashboard pages', () => {
  let dashboard: Dashboard;
  let first: RunSummary;
  let second: RunSummary;
  let failedEval: string;
  let project: string;

  before(async () => {
    dashboard = await startDashboard();
    const file = await writeMixedJobset(dashboard.pipeline.dir);
    first = await dashboard.pipeline.run(file);
    // The same jobset again, on a pull request: its successes are in the store now, so they are cached.
    second = await dashboard.pipeline.run(file, { ref: 'refs/pull/7/head' });
    const broken = join(dashboard.pipeline.dir, 'broken.nix');
    await writeFile(broken, 'let in { x = <nope/"}; }\n');
    failedEval = (await dashboard.pipeline.run(broken, { ref: 'refs/heads/syntax' })).eval.id;
    const { rows } = await dashboard.pipeline.db.pool.query<{ name: string }>(
      'SELECT p.name FROM evaluations e JOIN projects p ON p.id = e.project_id WHERE e.id = $1',
      [first.eval.id],
    );
    project = rows[0]!.name;
  });
  after(async () => {
    await dashboard?.close();
  });

  const get = async (url: string) => dashboard.app.inject({ method: 'GET', url });
  const drvOf = (summary: RunSummary, attr: string): string => summary.jobs.find((j) => j.attr === attr)!.drvPath!;

  it('shows an eval with its jobs, failures first, the root cause linked, and hostile text escaped', async () => {
    assert.deepEqual(
      Object.fromEntries(first.jobs.map((j) => [j.attr, j.status])),
      { base: 'succeeded', broken: 'failed', dependent: 'dep-failed', [HOSTILE]: 'succeeded', unevaluable: 'failed' },
    );
    const response = await get(`/ci/evals/${first.eval.id}`);
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/html; charset=utf-8/);
    const page = response.body;

    const rows = jobRows(page);
    assert.deepEqual(
      rows.map(([, state]) => state),
      ['failed', 'eval-error', 'dep-failed', 'succeeded', 'succeeded'],
      'failures first, then dep-failed, then the rest',
    );
    assert.deepEqual(rows.map(([attr]) => attr).slice(0, 3), ['broken', 'unevaluable', 'dependent']);
    assert.ok(rows.some(([attr]) => attr === '&lt;img src=x onerror=alert(1)&gt;'), 'the hostile attribute name is shown, escaped');
    assert.ok(!page.includes(HOSTILE), 'no hostile markup reaches the page');
    assert.ok(page.includes('&lt;b&gt;no&lt;/b&gt; &amp; &quot;such&quot; attribute'), 'the evaluation error is shown, escaped');
    assert.ok(!page.includes('<b>no</b>'));

    // The dep-failed row names the failed build and links to it.
    const brokenHash = hashOf(drvOf(first, 'broken'));
    assert.match(page, new RegExp(`because <a href="/ci/builds/${brokenHash}" class="mono">broken</a> failed`));
    // Header: state, the commit status line, the Temporal workflow, no live stream for a finished eval.
    assert.match(page, /<h2>Eval #\d+<\/h2><span class="st s-failed">/);
    assert.match(page, /2\/4 built, 1 failed, 1 dep-failed/);
    assert.ok(page.includes(`href="${TEMPORAL_UI}/namespaces/${dashboard.pipeline.stack.namespace}/workflows/eval%2F${first.eval.id}"`));
    assert.ok(!page.includes('data-live='), 'a finished eval opens no stream');
    assert.match(page, /<time datetime="[^"]+Z" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC" data-rel>/);
  });

  it('marks jobs whose outputs were already built as cached', async () => {
    const page = (await get(`/ci/evals/${second.eval.id}`)).body;
    const states = Object.fromEntries(jobRows(page));
    assert.equal(states.base, 'cached');
    assert.equal(states.broken, 'failed', 'a failed build stays failed');
    assert.match(page, /<span class="badge cache"[^>]*>cached<\/span>/);
    assert.match(page, /\(2 cached\)/);
  });

  it('shows a failed build with its escaped log tail, root cause of its dependents and the evals including it', async () => {
    const brokenDrv = drvOf(first, 'broken');
    const response = await get(`/ci/builds/${hashOf(brokenDrv)}`);
    assert.equal(response.statusCode, 200);
    const page = response.body;
    assert.match(page, /<h2 class="mono">broken<\/h2><span class="st s-failed">/);
    const log = page.slice(page.indexOf('<pre class="log" id="log">'), page.indexOf('</pre>', page.indexOf('<pre class="log"')));
    assert.match(log, /compiling &lt;script&gt;alert\(&quot;log&quot;\)&lt;\/script&gt;/);
    assert.match(log, /fails on purpose/);
    assert.ok(!page.includes('<script>alert('), 'log text never becomes markup');
    assert.ok(page.includes(brokenDrv.slice(brokenDrv.lastIndexOf('-'))), 'the derivation path is shown');
    assert.match(page, /Dep-failed because of this build/);
    assert.match(page, new RegExp(`<a href="/ci/builds/${hashOf(drvOf(first, 'dependent'))}" class="mono">dependent</a>`));
    for (const evalId of [first.eval.id, second.eval.id]) assert.ok(page.includes(`<a href="/ci/evals/${evalId}">#${evalId}</a>`));

    // The same build by its build_jobs id; a dep-failed build names its root cause.
    const { rows } = await dashboard.pipeline.db.pool.query<{ id: string }>('SELECT id FROM build_jobs WHERE drv_path = $1', [brokenDrv]);
    assert.equal((await get(`/ci/builds/${rows[0]!.id}`)).body.includes('fails on purpose'), true);
    const dependent = (await get(`/ci/builds/${hashOf(drvOf(first, 'dependent'))}`)).body;
    assert.match(dependent, /<dt>Root cause<\/dt><dd class="full"><a href="\/ci\/builds\/[0-9a-z]{32}" class="mono">broken<\/a> failed/);
    assert.match(dependent, /Not built: an input failed\./);
  });

  it('shows a succeeded build with its outputs, and links succeeded and failed builds to their full logs in the binary cache', async () => {
    const summaryJob = first.jobs.find((j) => j.attr === 'base')!;
    const page = (await get(`/ci/builds/${hashOf(summaryJob.drvPath!)}`)).body;
    assert.match(page, /<span class="st s-succeeded">/);
    const out = summaryJob.outputs.out!;
    assert.ok(page.includes(`${out.slice(out.lastIndexOf('-'))}</span>`), 'the output path is listed');
    assert.match(page, /sha256:[0-9a-z]{52}/);
    const drvBase = summaryJob.drvPath!.slice(summaryJob.drvPath!.lastIndexOf('/') + 1);
    assert.ok(page.includes(`<a href="/log/${drvBase}">Full log</a>`), 'the full log is linked');
    const log = await get(`/log/${drvBase}`);
    assert.equal(log.statusCode, 200);
    assert.match(log.body, /building base/);
    // A failed build's full log is in the cache too.
    const brokenDrv = drvOf(first, 'broken');
    const brokenBase = brokenDrv.slice(brokenDrv.lastIndexOf('/') + 1);
    assert.ok((await get(`/ci/builds/${hashOf(brokenDrv)}`)).body.includes(`<a href="/log/${brokenBase}">Full log</a>`), 'the failed build links its full log');
    assert.match((await get(`/log/${brokenBase}`)).body, /fails on purpose/);
  });

  it('offers each output as its NAR, which restores to the output', async () => {
    const job = first.jobs.find((j) => j.attr === 'base')!;
    const out = job.outputs.out!;
    const href = `/api/builds/${hashOf(job.drvPath!)}/outputs/out.nar`;
    assert.ok((await get(`/ci/builds/${hashOf(job.drvPath!)}`)).body.includes(`<a href="${href}" download class="nar-link">NAR</a>`), 'the build page links the NAR');
    const response = await get(href);
    assert.equal(response.statusCode, 200);
    const compression = String(response.headers['x-nar-compression']);
    const name = out.slice(out.lastIndexOf('/') + 1);
    assert.equal(response.headers['content-disposition'], `attachment; filename*=UTF-8''${encodeURIComponent(`${name}.nar${compression === 'zstd' ? '.zst' : ''}`)}`);
    assert.equal(response.headers['content-type'], compression === 'zstd' ? 'application/zstd' : 'application/x-nix-nar');
    const raw = response.rawPayload;
    const chunks: Buffer[] = [];
    if (compression === 'zstd') for await (const chunk of zstdDecompress(Readable.from([raw]))) chunks.push(chunk);
    const nar = compression === 'zstd' ? Buffer.concat(chunks) : raw;
    assert.ok(nar.equals((await execa('nix-store', ['--dump', out], { encoding: 'buffer' })).stdout as Buffer), 'the NAR is what nix-store --dump gives');
    const dir = await mkdtemp(join(tmpdir(), 'nar-'));
    try {
      await execa('nix-store', ['--restore', join(dir, 'out')], { input: nar });
      assert.equal(await readFile(join(dir, 'out'), 'utf8'), 'base\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // An output the build does not have, a malformed name, an unknown build: errors naming them.
    assert.equal((await get(`/api/builds/${hashOf(job.drvPath!)}/outputs/dev.nar`)).statusCode, 404);
    assert.equal((await get(`/api/builds/${hashOf(job.drvPath!)}/outputs/out`)).statusCode, 400);
    assert.equal((await get(`/api/builds/${'0'.repeat(32)}/outputs/out.nar`)).statusCode, 404);
    // A failed build has no NAR to offer.
    assert.equal((await get(`/api/builds/${hashOf(drvOf(first, 'broken'))}/outputs/out.nar`)).statusCode, 404);
    // A private project's output is hidden from those who may not read it.
    const pool = dashboard.pipeline.db.pool;
    const hide = 'UPDATE repositories SET private = $1 WHERE id = (SELECT repository_id FROM projects WHERE name = $2)';
    await pool.query(hide, [true, project]);
    try {
      assert.equal((await get(href)).statusCode, 404);
    } finally {
      await pool.query(hide, [false, project]);
    }
  });

  it('shows an evaluation failure on the eval page', async () => {
    const page = (await get(`/ci/evals/${failedEval}`)).body;
    assert.match(page, /<h2>Eval #\d+<\/h2><span class="st s-failed">/);
    assert.match(page, /<pre class="error">[^<]*(syntax|unexpected|error)/i);
    assert.match(page, /Not built: the evaluation failed/);
  });

  it('lists recent evals newest first, pages through them, and keeps the health panel', async () => {
    const page = (await get('/ci/')).body;
    const ids = [...page.matchAll(/<a href="\/ci\/evals\/(\d+)">#\d+<\/a>/g)].map((m) => m[1]);
    assert.deepEqual(ids, [failedEval, second.eval.id, first.eval.id]);
    assert.match(page, /2\/4 built \(2 cached\), 1 failed, 1 dep-failed/);
    assert.match(page, /<span class="mono" title="refs\/heads\/local">local<\/span>/);
    assert.match(page, /<span class="mono" title="refs\/pull\/7\/head">PR #7<\/span>/);
    assert.match(page, /id="components"/);

    const one = await listEvalPage(dashboard.pipeline.db.pool, { limit: 1 });
    assert.deepEqual(one.evals.map((e) => e.id), [failedEval]);
    const next = await listEvalPage(dashboard.pipeline.db.pool, { limit: 1, before: one.next! });
    assert.deepEqual(next.evals.map((e) => e.id), [second.eval.id]);
    const older = (await get(`/ci/?before=${second.eval.id}`)).body;
    assert.deepEqual([...older.matchAll(/<a href="\/ci\/evals\/(\d+)">#\d+<\/a>/g)].map((m) => m[1]), [first.eval.id]);
    assert.match(older, /← Newest/);
  });

  it('shows a project with its refs, whether its name is encoded or not', async () => {
    for (const url of [`/ci/projects/${project}`, `/ci/projects/${encodeURIComponent(project)}`]) {
      const response = await get(url);
      assert.equal(response.statusCode, 200, url);
      assert.ok(response.body.includes(`<h2>${project}</h2>`));
      assert.match(response.body, new RegExp(`title="refs/pull/7/head">PR #7</span></td><td class="num">1</td><td class="nowrap"><a href="/ci/evals/${second.eval.id}">`));
      assert.match(response.body, new RegExp(`title="refs/heads/local">local</span></td><td class="num">1</td><td class="nowrap"><a href="/ci/evals/${first.eval.id}">`));
    }
    const index = (await get('/ci/projects')).body;
    assert.ok(index.includes(`<a href="/ci/projects/local/${project.slice('local/'.length)}">${project}</a>`));
  });

  it('answers 404 for what does not exist, with an HTML page', async () => {
    for (const url of ['/ci/evals/999999', '/ci/evals/abc', '/ci/builds/zzz', `/ci/builds/${'0'.repeat(32)}`, '/ci/builds/999999', '/ci/projects/no/such']) {
      const response = await get(url);
      assert.equal(response.statusCode, 404, url);
      assert.match(response.body, /<h2>Not found<\/h2>/);
    }
    const stream = await get('/ci/evals/999999/events');
    assert.equal(stream.statusCode, 404);
  });

  it('shows the history of one attribute across the project\'s evals, since when it fails, and links it from the job page', async () => {
    const historyHref = `/ci/projects/${project}/jobs/broken`;
    const jobPage = (await get(`/ci/evals/${first.eval.id}/jobs/broken`)).body;
    assert.ok(jobPage.includes(`<a href="${historyHref}" class="history-link">`), 'the job page links its history');

    const response = await get(historyHref);
    assert.equal(response.statusCode, 200);
    const page = response.body;
    const rows = [...page.matchAll(/<tr data-state="([a-z-]+)">\s*<td class="nowrap"><a href="\/ci\/evals\/(\d+)">/g)].map((m) => [m[2], m[1]]);
    assert.deepEqual(rows, [[second.eval.id, 'failed'], [first.eval.id, 'failed']], 'newest first; the eval without the attribute is left out');
    const commit = (await dashboard.pipeline.db.pool.query<{ c: string }>('SELECT commit_sha AS c FROM evaluations WHERE id = $1', [first.eval.id])).rows[0]!.c;
    assert.match(page, new RegExp(`failing since <a href="/ci/evals/${first.eval.id}">eval #${first.eval.id}</a> / commit <span class="mono" title="${commit}">${commit.slice(0, 12)}</span>`));
    assert.ok(page.includes(`<a href="/ci/builds/${hashOf(drvOf(first, 'broken'))}">build</a>`), 'each entry links its build');
    assert.match(page, /title="refs\/pull\/7\/head">PR #7<\/span>/);

    // A job that succeeds has no failing line; its JSON twin agrees.
    const base = (await get(`/ci/projects/${project}/jobs/base`)).body;
    assert.ok(!base.includes('failing since'));
    assert.match(base, /<tr data-state="cached">[\s\S]*<tr data-state="succeeded">/);
    const json = (await get(`/api/projects/${project}/jobs/broken`)).json<{ attr: string; entries: Array<{ evalId: string; state: string; commit: string }>; failingSince: { evalId: string } | null }>();
    assert.equal(json.attr, 'broken');
    assert.deepEqual(json.entries.map((e) => [e.evalId, e.state]), [[second.eval.id, 'failed'], [first.eval.id, 'failed']]);
    assert.equal(json.entries[1]!.commit, commit);
    assert.equal(json.failingSince?.evalId, first.eval.id);
    assert.equal((await get(`/api/projects/${project}/jobs/base`)).json<{ failingSince: unknown }>().failingSince, null);
  });

  it('encodes odd attribute names in job history links, and answers 404 for hostile or unknown ones', async () => {
    const href = `/ci/projects/${project}/jobs/${encodeURIComponent(HOSTILE)}`;
    const jobPage = (await get(`/ci/evals/${first.eval.id}/jobs/${encodeURIComponent(HOSTILE)}`)).body;
    assert.ok(jobPage.includes(`href="${href}"`), 'the link encodes the name');
    const page = await get(href);
    assert.equal(page.statusCode, 200);
    assert.ok(!page.body.includes(HOSTILE), 'the name is escaped');
    assert.ok(page.body.includes('&lt;img src=x onerror=alert(1)&gt;'));
    // A malformed escape is refused before any route runs: a 400, never a 500.
    assert.equal((await get(`/ci/projects/${project}/jobs/%zz`)).statusCode, 400);
    for (const attr of ['no.such.attr', '%00', '..%2F..%2Fetc', encodeURIComponent('a/b?c#d'), '']) {
      for (const prefix of ['/ci', '/api']) {
        const url = `${prefix}/projects/${project}/jobs/${attr}`;
        const response = await get(url);
        assert.equal(response.statusCode, 404, url);
      }
    }
    assert.equal((await get(`/ci/evals/${first.eval.id}/jobs/%00`)).statusCode, 404, 'a NUL in a per-eval job name');
    for (const url of ['/ci/projects/no/such/jobs/base', '/api/projects/no/such/jobs/base']) assert.equal((await get(url)).statusCode, 404, url);
  });

  it('hides the job history of a private project from those who may not read it', async () => {
    const pool = dashboard.pipeline.db.pool;
    const repo = `UPDATE repositories SET private = $1 WHERE id = (SELECT repository_id FROM projects WHERE name = $2)`;
    const updated = await pool.query(repo, [true, project]);
    assert.equal(updated.rowCount, 1);
    try {
      for (const url of [`/ci/projects/${project}/jobs/broken`, `/api/projects/${project}/jobs/broken`, `/ci/projects/${project}`]) {
        assert.equal((await get(url)).statusCode, 404, url);
      }
    } finally {
      await pool.query(repo, [false, project]);
    }
    assert.equal((await get(`/ci/projects/${project}/jobs/broken`)).statusCode, 200);
  });

  it('agrees with the JSON twin of the eval', async () => {
    const json = (await get(`/api/evals/${first.eval.id}`)).json<{ counts: { succeeded: number; failed: number; 'dep-failed': number }; jobs: unknown[] }>();
    assert.equal(json.jobs.length, 5);
    assert.deepEqual([json.counts.succeeded, json.counts.failed, json.counts['dep-failed']], [2, 1, 1]);
    const list = (await get(`/api/evals?project=${encodeURIComponent(project)}&limit=2`)).json<Array<{ id: string }>>();
    assert.deepEqual(list.map((e) => e.id), [second.eval.id, first.eval.id]);
  });
});
