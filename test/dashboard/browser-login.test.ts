/**
 * A person in a real browser (headless Chromium through playwright-core): logs in through the
 * forge's OAuth flow (the fake GitHub's authorization server), sees a private project, presses
 * "Rebuild" on a failed build, and watches the build page follow the rebuild in place. The API
 * listens on a real port; the ref workflow is one no worker runs, so the test plays its part in
 * PostgreSQL once the rebuild signal has reached it.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { refWorkflowId } from '../../workflows/definitions.ts';
import { startAccessStack, type AccessStack } from '../api/auth-support.ts';

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A port free a moment ago: the OAuth callback URL must be known before the app listens. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('logging in and rebuilding in a browser', () => {
  let stack: AccessStack;
  let browser: Browser;
  let base: string;
  const hash = Array.from(randomBytes(32), (byte) => NIX_BASE32[byte % 32]).join('');
  const drvPath = `/nix/store/${hash}-secret-check.drv`;
  const ref = refWorkflowId('acme/secret', 'refs/heads/main');

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    stack = await startAccessStack({ publicUrl: base });
    await stack.app.listen({ host: '127.0.0.1', port });
    stack.fake.permissions.set('maintainer', 'write');
    const pool = stack.database.pool;
    await pool.query(`INSERT INTO derivations (drv_path, name, system) VALUES ($1, 'secret-check', 'x86_64-linux')`, [drvPath]);
    await pool.query(`INSERT INTO eval_attrs (eval_id, attr, drv_path) VALUES ($1, 'checks.secret', $2)`, [stack.evals.private, drvPath]);
    await pool.query(
      `WITH b AS (INSERT INTO build_jobs (drv_path, status, attempts, error, exit_code, started_at, finished_at)
                  VALUES ($1, 'failed', 1, 'builder for secret-check failed with exit code 1', 1, now() - interval '1 minute', now()) RETURNING id)
       INSERT INTO evaluation_builds (eval_id, build_id) SELECT $2, id FROM b`,
      [drvPath, stack.evals.private],
    );
    await pool.query(`UPDATE evaluations SET status = 'succeeded', error = NULL WHERE id = $1`, [stack.evals.private]);
    // The ref workflow, opened on a queue no worker polls: it records the signals it gets.
    await stack.temporal.workflow.start('refWorkflow', { workflowId: ref, taskQueue: `idle-${randomUUID()}`, args: [] });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    await stack?.temporal.workflow.getHandle(ref).terminate('test over').catch(() => undefined);
    await stack?.close();
  });

  it('logs in with the forge, sees the private project, and rebuilds a failed build in place', { timeout: 25_000 }, async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(6000);
    const headSays = (state: string) => page.locator('#build-head', { hasText: new RegExp(`\\b${state}\\b`) }).waitFor();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));

    await page.goto(`${base}/ci/projects`);
    assert.equal(await page.getByRole('link', { name: 'acme/secret' }).count(), 0, 'nobody logged in: the private project is not there');

    stack.fake.oauthUser = 'maintainer';
    await page.getByRole('link', { name: 'Log in with GitHub' }).click();
    await page.waitForURL(`${base}/ci/`);
    assert.match((await page.locator('form.account').textContent()) ?? '', /maintainer \(github\)/);

    await page.goto(`${base}/ci/projects`);
    await page.getByRole('link', { name: 'acme/secret' }).click();
    await page.waitForURL(`${base}/ci/projects/acme/secret`);

    // The ref workflow's part: once the press has signalled it, the build is back in the queue and runs.
    const signals = async () => {
      const history = await stack.temporal.workflow.getHandle(ref).fetchHistory();
      return (history.events ?? []).flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? []);
    };
    await page.route(`${base}/api/builds/${hash}/rebuild`, async (route) => {
      const response = await route.fetch({ maxRedirects: 0 });
      if (response.status() === 303 && (await signals()).includes('rebuild')) {
        await stack.database.pool.query(`UPDATE build_jobs SET status = 'building', error = NULL, exit_code = NULL, finished_at = NULL, started_at = now(), updated_at = now() WHERE drv_path = $1`, [drvPath]);
      }
      await route.fulfill({ response });
    });
    await page.goto(`${base}/ci/builds/${hash}`);
    assert.match((await page.locator('#build-head').textContent()) ?? '', /failed/);
    await page.getByRole('button', { name: 'Rebuild' }).click();
    await page.waitForURL(`${base}/ci/builds/${hash}`);
    await headSays('building');

    // Still the same document when the build finishes: the page follows it.
    await page.evaluate('window.sameDocument = true');
    await stack.database.pool.query(`UPDATE build_jobs SET status = 'succeeded', finished_at = now(), updated_at = now() WHERE drv_path = $1`, [drvPath]);
    await headSays('succeeded');
    assert.equal(await page.evaluate('window.sameDocument'), true, 'updated in place, not reloaded');
    const audit = await stack.database.pool.query<{ actor: string; via: string }>(`SELECT actor, via FROM audit_log WHERE action = 'build.rebuild'`);
    assert.deepEqual(audit.rows, [{ actor: 'github:maintainer', via: 'session' }]);
    assert.deepEqual(problems, []);
  });
});
