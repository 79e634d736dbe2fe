/**
 * Drills on one machine's `harmonia-ci run`: the baseline, the whole run SIGKILLed and run again,
 * and two pushes to one ref 1 s apart whose DAGs overlap by 90 %.
 */
import { join } from 'node:path';
import { readRunSummary, startLocalEval, waitForEvalWorkflow } from '../../cli/run-progress.ts';
import { startPipeline, waitUntil } from '../pipeline/harness.ts';
import { newArena, outcome, startRun, succeededBuilds, writeDag, type Drill } from './common.ts';

export const baseline: Drill = async (context) => {
  const arena = await newArena(context, 'baseline');
  const file = await writeDag(join(arena.dir, 'source'), context.shape, arena.dir, arena.builtLog);
  const started = Date.now();
  const { stdout } = await startRun(arena, file).done;
  return outcome(arena, stdout, (Date.now() - started) / 1000, join(arena.dir, 'cache'));
};

export const runKilled: Drill = async (context) => {
  const arena = await newArena(context, 'run-killed');
  const file = await writeDag(join(arena.dir, 'source'), context.shape, arena.dir, arena.builtLog);
  const started = Date.now();
  const first = startRun(arena, file);
  const total = context.shape.layers * context.shape.width;
  await waitUntil(async () => (await succeededBuilds(arena.db)) >= Math.floor(total / 3), 'a third of the builds succeeded', 300_000);
  process.kill(-first.child.pid!, 'SIGKILL');
  await first.done;
  const { stdout } = await startRun(arena, file).done;
  return outcome(arena, stdout, (Date.now() - started) / 1000, join(arena.dir, 'cache'));
};

/** Two pushes to one ref 1 s apart, through one set of workers (as a forge would send them). */
export const overlappingPushes: Drill = async (context) => {
  const arena = await newArena(context, 'overlap');
  const pipeline = await startPipeline({ env: { HARMONIA_CI_LIMITS_BUILDER_HEARTBEAT_TIMEOUT: '10s' } });
  try {
    const source = join(pipeline.dir, 'source');
    const record = { builtLog: arena.builtLog, db: pipeline.db };
    const file = await writeDag(source, context.shape, arena.dir, arena.builtLog);
    const started = Date.now();
    const first = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: file, sha: 'a'.repeat(40) });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // 10 % of the top layer changes: a new commit whose DAG overlaps the first by 90 %.
    await writeDag(source, context.shape, arena.dir, arena.builtLog, Math.max(1, Math.round(context.shape.width / 10)));
    const second = await startLocalEval({ client: pipeline.client, pool: pipeline.db.pool, path: file, sha: 'b'.repeat(40) });
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, first.evalId, 600_000);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, second.evalId, 600_000);
    const summary = await readRunSummary(pipeline.db.pool, second.evalId);
    return await outcome(record, summary, (Date.now() - started) / 1000, join(pipeline.dir, 'state', 'cache'));
  } finally {
    await pipeline.close();
    // Only the arena's build record was used: its database goes too.
    await arena.db.drop();
  }
};
