/**
 * Live updates on a real listener while a real slow build (`/bin/sleep 2`) runs: the eval and
 * build-log event streams read with fetch, and the eval page in headless Chromium updating in
 * place without a reload.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { startLocalEval } from '../../cli/run-progress.ts';
import { jobRowId } from '../../api/views/evals.ts';
import { writeJobset } from '../pipeline/harness.ts';
import { startDashboard, type Dashboard } from './support.ts';

interface StreamEvent {
  event: string;
  data: Record<string, string>;
  id?: string;
}

/** Reads a server-sent event stream until it ends (or `timeoutMs` passes), parsing each event. */
async function readEvents(url: string, timeoutMs = 30_000): Promise<StreamEvent[]> {
  const response = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: AbortSignal.timeout(timeoutMs) });
  assert.equal(response.status, 200, url);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: StreamEvent[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      if (fields.event) events.push({ event: fields.event, data: JSON.parse(fields.data ?? '{}') as Record<string, string>, ...(fields.id ? { id: fields.id } : {}) });
    }
  }
  return events;
}

const unescapeAttribute = (text: string): string => text.replace(/&amp;/g, '&').replace(/&quot;/g, '"');

describe('dashboard live updates', () => {
  let dashboard: Dashboard;
  let base: string;

  before(async () => {
    dashboard = await startDashboard();
    await dashboard.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(dashboard.app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await dashboard?.close();
  });

  /** Starts an eval of `jobs` and waits until the build named `slow` is running. */
  async function startWithSlowBuild(jobs: Parameters<typeof writeJobset>[1]): Promise<{ evalId: string; slowDrv: string }> {
    const { pipeline } = dashboard;
    const file = await writeJobset(pipeline.dir, jobs);
    const { evalId } = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: file });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await pipeline.db.pool.query<{ drv_path: string; status: string }>(
        `SELECT b.drv_path, b.status FROM evaluation_builds eb JOIN build_jobs b ON b.id = eb.build_id
           JOIN derivations d ON d.drv_path = b.drv_path WHERE eb.eval_id = $1 AND d.name = 'slow'`,
        [evalId],
      );
      if (rows[0]?.status === 'building') return { evalId, slowDrv: rows[0].drv_path };
      assert.ok(Date.now() < deadline, `the slow build of eval ${evalId} never started (status ${rows[0]?.status})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('streams the eval and the build log while a slow build finishes, then ends', async () => {
    const { evalId, slowDrv } = await startWithSlowBuild({
      slow: { script: 'echo slow-start; /bin/sleep 2; echo slow-done' },
      quick: {},
    });
    const evalPage = await (await fetch(`${base}/ci/evals/${evalId}`)).text();
    const evalStream = unescapeAttribute(/data-live="([^"]+)"/.exec(evalPage)?.[1] ?? assert.fail('a running eval opens a stream'));
    assert.match(evalPage, /data-state="building"/);
    const hash = slowDrv.slice(slowDrv.lastIndexOf('/') + 1).slice(0, 32);
    const buildPage = await (await fetch(`${base}/ci/builds/${hash}`)).text();
    const logStream = unescapeAttribute(/data-live="([^"]+)"/.exec(buildPage)?.[1] ?? assert.fail('a running build opens a stream'));

    const [evalEvents, logEvents] = await Promise.all([readEvents(`${base}${evalStream}`), readEvents(`${base}${logStream}`)]);

    assert.equal(evalEvents.at(-1)?.event, 'end', 'the eval stream ends when the eval is done');
    const slowRow = evalEvents.map((e) => e.data[jobRowId('slow')]).filter(Boolean).at(-1) ?? assert.fail('the slow row was sent');
    assert.match(slowRow, /data-state="succeeded"/);
    const summary = evalEvents.map((e) => e.data.summary).filter(Boolean).at(-1)!;
    assert.match(summary, /2\/2 built/);
    assert.ok(evalEvents.every((e) => e.event !== 'swap' || e.id), 'every update carries an id to resume from');

    assert.equal(logEvents.at(-1)?.event, 'end', 'the log stream ends when the build is done');
    const log = logEvents.filter((e) => e.event === 'text').at(-1)?.data.log ?? assert.fail('the log tail was sent');
    assert.match(log, /slow-start\n(.|\n)*slow-done/);
    const head = logEvents.map((e) => e.data['build-head']).filter(Boolean).at(-1)!;
    assert.match(head, /<span class="st s-succeeded">/);
    assert.ok(!head.includes('id="live"'), 'the final header drops the live marker');

    // A client that reconnects with the id of the last update is told nothing new, only the end.
    const lastId = evalEvents.filter((e) => e.id).at(-1)!.id!;
    const resumed = await fetch(`${base}/ci/evals/${evalId}/events`, { headers: { 'last-event-id': lastId } });
    const text = await resumed.text();
    assert.doesNotMatch(text, /event: swap/);
    assert.match(text, /event: end/);
  });

  it('updates the eval page in place in a browser', async () => {
    const { evalId } = await startWithSlowBuild({
      slow: { script: '/bin/sleep 2' },
      lib: {},
      app: { deps: ['lib'] },
      tests: { deps: ['lib'], fail: true },
      docs: { deps: ['tests'] },
    });
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      // The page runs under its Content Security Policy: anything it refuses shows up here.
      const refused: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) refused.push(message.text());
      });
      page.on('pageerror', (error) => refused.push(error.message));
      const opened = await page.goto(`${base}/ci/evals/${evalId}`);
      assert.match((await opened?.headerValue('content-security-policy')) ?? '', /script-src 'sha256-/);
      assert.ok((await page.locator('#jobs tr').count()) === 5, 'the jobs table lists every job');
      await page.evaluate('window.sameDocument = true');
      await page.waitForSelector(`#${jobRowId('slow')}[data-state="succeeded"]`, { timeout: 20_000 });
      await page.waitForSelector('#live', { state: 'detached', timeout: 10_000 });
      assert.equal(await page.evaluate('window.sameDocument'), true, 'updated in place, not reloaded');
      assert.match((await page.locator('#summary').textContent()) ?? '', /3\/5 built, 1 failed, 1 dep-failed/);
      assert.equal(await page.locator('#jobs tr').first().getAttribute('data-state'), 'failed', 'failures first');
      assert.deepEqual(refused, [], 'nothing the page does is refused by its policy');

      const dir = process.env.HARMONIA_TEST_SCREENSHOT_DIR ?? dashboard.pipeline.dir;
      await mkdir(dir, { recursive: true });
      const shot = join(dir, 'eval.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = await readFile(shot);
      assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
      assert.ok(png.length > 10_000, 'the screenshot shows a rendered page');
    } finally {
      await browser.close();
    }
  });
});
