/**
 * Ctrl-C on `harmonia-ci run` exits even when its Temporal server is already gone: `run` against
 * a dev server of this test's own, which is stopped while a build runs; then SIGINT, and the
 * process must be gone within a bound, saying what it did.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTemporalDevServer, type TemporalDevServer } from '../../temporal/dev-server.ts';
import { startCliHarness, writeJobs, type CliHarness } from './harness.ts';

// The clean stop's own deadline (cli/interrupt.ts) plus room for a loaded machine.
const EXIT_BOUND_MS = 20_000;

describe('Ctrl-C on `run`', { timeout: 120_000 }, () => {
  let h: CliHarness;
  let temporal: TemporalDevServer | undefined;

  before(async () => {
    h = await startCliHarness();
    temporal = await startTemporalDevServer({ namespace: 'default', port: 0, headless: true, log: { info: () => undefined, warn: () => undefined, debug: () => undefined } });
  });
  after(async () => {
    await temporal?.stop();
    await h?.close();
  });

  it('exits within a bound when the Temporal server is already gone', async () => {
    const jobs = await writeJobs(h.dir, { slow: { script: 'echo slow starts; /bin/sleep 600' } });
    const run = h.start(['run', jobs, '--state-dir', join(h.dir, 'run-state'), '--no-ui'], {
      TEMPORAL_ADDRESS: temporal!.address,
      HARMONIA_CI_TEMPORAL_NAMESPACE: 'default',
    });
    await run.waitFor(/building\s+slow/, 90_000);
    await temporal!.stop();
    temporal = undefined;

    run.child.kill('SIGINT');
    const code = await Promise.race([run.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), EXIT_BOUND_MS))]);
    assert.notEqual(code, 'hung', `run did not exit within ${EXIT_BOUND_MS / 1000} s of SIGINT:\n${run.output()}`);
    assert.equal(code, 130, run.output());
    // Worker shutdown waits on the server that is gone: the deadline ends it, and says so.
    assert.match(run.output(), /SIGINT: stopping \(press Ctrl-C again to exit at once\)\n(.|\n)*could not stop cleanly within 10 s/);
  });
});
