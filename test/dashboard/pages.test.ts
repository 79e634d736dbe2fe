/**
 * The dashboard pages, rendered by the real app from rows a real pipeline wrote (Temporal,
 * PostgreSQL, nix-daemon builds): statuses, failures first, root causes, the failed build's log
 * tail, escaping of hostile attribute names, errors and logs, pagination and 404s.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

  it('agrees with the JSON twin of the eval', async () => {
    const json = (await get(`/api/evals/${first.eval.id}`)).json<{ counts: { succeeded: number; failed: number; 'dep-failed': number }; jobs: unknown[] }>();
    assert.equal(json.jobs.length, 5);
    assert.deepEqual([json.counts.succeeded, json.counts.failed, json.counts['dep-failed']], [2, 1, 1]);
    const list = (await get(`/api/evals?project=${encodeURIComponent(project)}&limit=2`)).json<Array<{ id: string }>>();
    assert.deepEqual(list.map((e) => e.id), [second.eval.id, first.eval.id]);
  });
});
