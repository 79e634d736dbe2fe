/**
 * Records the workflow histories the replay test (test/replay/replay.test.ts) replays:
 *
 *   node --import tsx test/replay/capture.ts [tag]
 *
 * Runs a small jobset through the embedded stack (a DAG with a failure, so the ref, eval and
 * build workflows take their main paths) and saves one history per case under
 * test/replay/histories/. Capture again only when a workflow change is meant to be incompatible
 * with running workflows (and then say so in the change); otherwise guard the change with
 * `patched()` and keep the old histories; a tag (e.g. the patch id) saves the new path's
 * histories beside them as `<case>.<tag>.json`, so both paths stay guarded.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startLocalWorkers } from '../../cli/local-workers.ts';
import { startLocalEval, waitForEvalWorkflow } from '../../cli/run-progress.ts';
import { startLocalStack } from '../../cli/stack.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger, routeTemporalLogs } from '../../lib/log.ts';
import { locateTemporalCli } from '../../lib/tools.ts';
import { buildWorkflowId, evalWorkflowId, refWorkflowId } from '../../workflows/definitions.ts';
import { writeJobset } from '../pipeline/harness.ts';

const HISTORIES = fileURLToPath(new URL('./histories/', import.meta.url));
const tag = process.argv[2];

const dir = await mkdtemp(join(tmpdir(), 'harmonia-capture-'));
const log = createLogger({ level: 'error' });
await routeTemporalLogs(log);
const config = await loadServerConfig({ env: { ...process.env, HARMONIA_CI_STATE_DIR: join(dir, 'state') } });
const stack = await startLocalStack({ config, log, ui: false, temporalPort: 0, report: (line) => process.stderr.write(`${line}\n`) });
const workers = await startLocalWorkers({ stack, config, log });

/** Saves the latest run of each workflow the way Temporal's own tools do, so `temporal workflow show` output replays too. */
async function save(cases: Record<string, string>): Promise<void> {
  const cli = locateTemporalCli();
  for (const [name, workflowId] of Object.entries(cases)) {
    const { stdout } = await execa(cli, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', stack.temporalAddress, '--namespace', stack.namespace]);
    await writeFile(join(HISTORIES, tag ? `${name}.${tag}.json` : `${name}.json`), stdout.endsWith('\n') ? stdout : `${stdout}\n`);
    process.stderr.write(`saved ${name} (${workflowId})\n`);
  }
}
try {
  const path = await writeJobset(dir, {
    lib: {},
    app: { deps: ['lib'] },
    broken: { fail: true },
    release: { deps: ['broken'] },
  }, { nonce: randomUUID() });
  const { evalId, projectName } = await startLocalEval({ client: stack.client, pool: stack.database.pool, path, ref: 'refs/heads/main' });
  await waitForEvalWorkflow(stack.client, stack.database.pool, evalId);
  const { rows } = await stack.database.pool.query<{ name: string; drv_path: string }>(
    `SELECT d.name, b.drv_path FROM build_jobs b JOIN derivations d USING (drv_path) WHERE d.name IN ('app', 'broken')`,
  );
  const drv = (name: string): string => rows.find((row) => row.name === name)!.drv_path;
  const cases: Record<string, string> = {
    'eval-with-failure': evalWorkflowId(evalId),
    'build-succeeded': buildWorkflowId(drv('app')),
    'build-failed': buildWorkflowId(drv('broken')),
  };
  // The ref workflow runs on; its history so far (push handled, eval done) is what a replay meets.
  cases['ref-push'] = refWorkflowId(projectName, 'refs/heads/main');
  await save(cases);
} finally {
  await workers.stop();
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
}
