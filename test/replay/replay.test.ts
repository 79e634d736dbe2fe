/**
 * Replays saved histories (test/replay/capture.ts records them) against today's workflow code: a
 * change that would make running workflows take another path (nondeterminism) fails here before
 * it reaches a server with workflows in flight.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { createLogger, routeTemporalLogs } from '../../lib/log.ts';
import { loadWorkflowBundle } from '../../workers/bundle.ts';

const HISTORIES = fileURLToPath(new URL('./histories/', import.meta.url));

describe('workflow replay', async () => {
  const files = (await readdir(HISTORIES)).filter((name) => name.endsWith('.json')).sort();
  let bundleDir: string;
  let bundle: { code: string };
  before(async () => {
    await routeTemporalLogs(createLogger({ level: 'error' }));
    bundleDir = await mkdtemp(join(tmpdir(), 'harmonia-replay-'));
    bundle = await loadWorkflowBundle(bundleDir);
  });
  after(async () => {
    await rm(bundleDir, { recursive: true, force: true });
  });

  it('has saved histories of the ref, eval and build workflows', () => {
    for (const kind of ['ref-', 'eval-', 'build-']) assert.ok(files.some((name) => name.startsWith(kind)), `a ${kind}* history`);
  });

  for (const file of files) {
    it(`replays ${file} without nondeterminism`, async () => {
      const history = historyFromJSON(JSON.parse(await readFile(join(HISTORIES, file), 'utf8')));
      assert.ok((history.events?.length ?? 0) > 5, `${file} holds a real history`);
      await Worker.runReplayHistory({ workflowBundle: bundle, replayName: file }, history);
    });
  }
});
