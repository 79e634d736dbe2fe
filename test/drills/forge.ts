/**
 * Drills on the forge side, with harmonia-ci as a GitHub App against the fake GitHub of the
 * forge tests (every request checked against GitHub's OpenAPI description) and an in-process
 * pipeline: the forge's API down for a minute while the DAG builds, two pushes to a merge-queue
 * ref 1 s apart, and a burst of 500 webhook deliveries over HTTP with redeliveries and bad
 * signatures. The DAG is the drills' shared one, committed as a flake (`ciJobs.<system>`).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRunSummary, type RunSummary } from '../../cli/run-progress.ts';
import { checkWebhookBurst, sendWebhookBurst } from '../forge/burst.ts';
import type { Fault } from '../forge/fake-forge.ts';
import {
  commitFlake, commitJobs, enableRepository, eventually, lastStatus, setRef, startGitHubStack, SYSTEM, type Commit, type GitHubStack,
} from '../forge/support.ts';
import { waitForEvalWorkflow, waitUntil } from '../pipeline/harness.ts';
import { dagExpression, outcome, succeededBuilds, type DrillContext, type Outcome } from './common.ts';

const EVAL_CONTEXT = 'harmonia-ci/nix-eval';
const BUILD_CONTEXT = 'harmonia-ci/nix-build';
/** The longest a drill waits for its evals to end. */
const DRILL_TIMEOUT_MS = 15 * 60_000;

interface ForgeDrill {
  stack: GitHubStack;
  /** Commits the drill's DAG (salted for this drill) as the flake of `branch`; `changed` as in dagExpression. */
  commitDag(options?: { branch?: string; changed?: number }): Promise<Commit>;
  /** The eval of `sha` on `ref`, once the ref workflow created it. */
  evalOf(sha: string, ref: string): Promise<string>;
  /** The drill's Outcome from one eval's summary. */
  judge(summary: RunSummary, seconds: number): Promise<Outcome>;
}

/** Runs `body` on a GitHub stack with the repository enabled as a project, and closes the stack. */
async function withForge(context: DrillContext, label: string, options: { listen?: boolean }, body: (drill: ForgeDrill) => Promise<Outcome>): Promise<Outcome> {
  const dir = await mkdtemp(join(context.root, `${label}-`));
  const builtLog = join(dir, 'built');
  await writeFile(builtLog, '');
  const stack = await startGitHubStack({ env: { HARMONIA_CI_LIMITS_BUILDER_HEARTBEAT_TIMEOUT: '10s' }, listen: options.listen ?? false });
  try {
    await enableRepository(stack);
    const { pool } = stack.pipeline.db;
    return await body({
      stack,
      commitDag: ({ branch, changed = 0 } = {}) =>
        commitFlake(stack.repo.dir, dagExpression(context.shape, dir, builtLog, { changed, system: JSON.stringify(SYSTEM) }), {
          ...(branch ? { branch } : {}),
          message: `DAG ${changed} changed`,
        }),
      evalOf: (sha, ref) =>
        eventually(`an eval of ${sha.slice(0, 8)} on ${ref}`, async () => {
          const { rows } = await pool.query<{ id: string }>('SELECT id FROM evaluations WHERE commit_sha = $1 AND ref = $2', [sha, ref]);
          return rows[0] ? String(rows[0].id) : undefined;
        }),
      judge: async (summary, seconds) =>
        outcome({ builtLog, db: stack.pipeline.db }, jobsByName(summary), seconds, join(stack.pipeline.dir, 'state', 'cache')),
    });
  } finally {
    await stack.close();
  }
}

/** A flake's jobs are named `<attr>.<system>.<job>`: keep the job's name, as a jobs file names it. */
function jobsByName(summary: RunSummary): RunSummary {
  const prefix = new RegExp(`^ciJobs\\.${SYSTEM.replace(/[.-]/g, '\\$&')}\\.`);
  return { ...summary, jobs: summary.jobs.map((job) => ({ ...job, attr: job.attr.replace(prefix, '') })) };
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

const OUTAGE_MS = 60_000;

/** (8) The forge's API answers 500 to everything for 60 s while the DAG builds; the statuses arrive once it is back. */
export async function forgeDown(context: DrillContext): Promise<Outcome> {
  return withForge(context, 'forge-down', {}, async ({ stack, commitDag, evalOf, judge }) => {
    const { fake, pipeline } = stack;
    const ref = 'refs/heads/main';
    const commit = await commitDag();
    const started = Date.now();
    const pushed = await stack.deliver('push', await stack.pushPayload(commit.sha, commit.tree, ref));
    check(pushed.statusCode === 202, `the push was answered ${pushed.statusCode}: ${pushed.body}`);
    const evalId = await evalOf(commit.sha, ref);
    await waitUntil(async () => (await succeededBuilds(pipeline.db)) >= 1, 'the DAG builds', DRILL_TIMEOUT_MS);

    // Every request fails, installation tokens included, as when GitHub is down.
    const outage: Fault = { prefix: '', status: 500, message: 'Server Error', times: Number.MAX_SAFE_INTEGER };
    const before = { requests: fake.requests.length, statuses: fake.statuses.length, built: await succeededBuilds(pipeline.db) };
    fake.faults.push(outage);
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    outage.times = 0;
    const statusesDuring = fake.statuses.length - before.statuses;
    const during = fake.requests.slice(before.requests);
    const builtDuring = (await succeededBuilds(pipeline.db)) - before.built;

    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, evalId, DRILL_TIMEOUT_MS);
    const seconds = (Date.now() - started) / 1000;
    const refused = during.filter((r) => r.status === 500);
    const statusPosts = refused.filter((r) => r.method === 'POST' && r.path.includes('/statuses/')).length;
    check(refused.length > 0, 'no request reached the forge during the outage: the drill tested nothing');
    check(statusesDuring === 0, `the forge recorded ${statusesDuring} statuses during its outage`);
    const after = fake.statuses.slice(before.statuses + statusesDuring).filter((s) => s.sha === commit.sha);
    check(after.length > 0, 'no status arrived after the outage');

    const sent = await pipeline.db.pool.query<{ context: string; state: string; description: string }>(
      'SELECT context, state, description FROM forge_statuses WHERE eval_id = $1',
      [evalId],
    );
    for (const context of [EVAL_CONTEXT, BUILD_CONTEXT]) {
      const last = lastStatus(fake, commit.sha, context);
      const recorded = sent.rows.find((r) => r.context === context);
      check(last !== undefined && last.state !== 'pending', `${context} on the forge is ${last?.state ?? 'missing'}, not final`);
      check(
        recorded !== undefined && recorded.state === last!.state && recorded.description === last!.description,
        `${context} on the forge (${last!.state}: ${last!.description}) differs from what harmonia-ci recorded sending (${recorded?.state}: ${recorded?.description})`,
      );
    }
    check(fake.violations.length === 0, `requests GitHub's API description does not allow: ${fake.violations.join('; ')}`);
    const final = lastStatus(fake, commit.sha, BUILD_CONTEXT)!;
    const summary = await readRunSummary(pipeline.db.pool, evalId);
    const result = await judge(summary, seconds);
    result.note = `final nix-build ${final.state} "${final.description}" after a 60 s outage; ${refused.length} requests refused (${statusPosts} status posts), ${builtDuring} built meanwhile`;
    return result;
  });
}

/** (9b) Two pushes to a merge-queue ref 1 s apart, DAGs overlapping by 90 %: neither supersedes the other. */
export async function mergeQueuePushes(context: DrillContext): Promise<Outcome> {
  return withForge(context, 'merge-queue', {}, async ({ stack, commitDag, evalOf, judge }) => {
    const { fake, pipeline } = stack;
    const branch = 'gh-readonly-queue/main/pr-7-0123456789abcdef0123456789abcdef01234567';
    const ref = `refs/heads/${branch}`;
    const first = await commitDag({ branch });
    const started = Date.now();
    const one = await stack.deliver('push', await stack.pushPayload(first.sha, first.tree, ref));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // 10 % of the top layer changes: a new commit whose DAG overlaps the first by 90 %.
    const second = await commitDag({ branch, changed: Math.max(1, Math.round(context.shape.width / 10)) });
    const two = await stack.deliver('push', await stack.pushPayload(second.sha, second.tree, ref));
    check(one.statusCode === 202 && two.statusCode === 202, `the pushes were answered ${one.statusCode} and ${two.statusCode}`);
    const firstEval = await evalOf(first.sha, ref);
    const secondEval = await evalOf(second.sha, ref);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, firstEval, DRILL_TIMEOUT_MS);
    await waitForEvalWorkflow(pipeline.client, pipeline.db.pool, secondEval, DRILL_TIMEOUT_MS);
    const seconds = (Date.now() - started) / 1000;

    const { rows } = await pipeline.db.pool.query<{ status: string }>('SELECT status FROM evaluations WHERE id = ANY($1::bigint[]) ORDER BY id', [
      [firstEval, secondEval],
    ]);
    const evalStatuses = rows.map((r) => r.status);
    check(evalStatuses.join() === 'succeeded,succeeded', `the evals ended ${evalStatuses.join(' and ')}: a merge-queue push must not supersede`);
    const finals = [first, second].map((commit) => lastStatus(fake, commit.sha, BUILD_CONTEXT));
    check(
      finals.every((s) => s !== undefined && s.state !== 'pending' && s.state !== 'error'),
      `final nix-build statuses: ${finals.map((s) => `${s?.state}: ${s?.description}`).join('; ')}`,
    );
    check(fake.violations.length === 0, `requests GitHub's API description does not allow: ${fake.violations.join('; ')}`);
    const result = await judge(await readRunSummary(pipeline.db.pool, secondEval), seconds);
    const firstSummary = jobsByName(await readRunSummary(pipeline.db.pool, firstEval));
    const cancelled = firstSummary.jobs.filter((j) => j.status === 'cancelled').length;
    result.note = `both evals ${evalStatuses[0]}, ${cancelled} of the first's ${firstSummary.jobs.length} jobs cancelled, final nix-build ${finals.map((s) => s!.state).join(' and ')}`;
    return result;
  });
}

const BURST = { deliveries: 500, seconds: 10, refs: 10, badShare: 0.2 };

/**
 * (10) 500 webhook deliveries in 10 s over HTTP: pushes on 10 branches (two small commits, then
 * the DAG's), redeliveries of the same delivery ids and bad or missing signatures mixed in.
 */
export async function webhookBurst(context: DrillContext): Promise<Outcome> {
  return withForge(context, 'webhook-burst', { listen: true }, async ({ stack, commitDag, judge }) => {
    const { pipeline } = stack;
    const nonce = context.root;
    const warmup = await commitJobs(stack.repo.dir, { warmup: 'true' }, { nonce });
    const again = await commitJobs(stack.repo.dir, { warmup: 'true', again: 'true' }, { nonce });
    const dag = await commitDag();
    const refs = Array.from({ length: BURST.refs }, (_, i) => `refs/heads/burst-${i}`);
    for (const ref of refs) setRef(stack.repo.dir, ref, dag.sha);
    const plan = { refs, commits: [warmup, again, dag], deliveries: BURST.deliveries, seconds: BURST.seconds, badShare: BURST.badShare };

    const started = Date.now();
    const sent = await sendWebhookBurst(stack, plan);
    const sendSeconds = (Date.now() - started) / 1000;
    const figures = await checkWebhookBurst(stack, plan, sent, DRILL_TIMEOUT_MS);
    const seconds = (Date.now() - started) / 1000;
    check(figures.finalStatuses[BUILD_CONTEXT] === 'failure', `the DAG's final nix-build status is ${figures.finalStatuses[BUILD_CONTEXT]}, not failure`);
    const result = await judge(await readRunSummary(pipeline.db.pool, figures.lastEvals.get(refs[0]!)!), seconds);
    const { rows } = await pipeline.db.pool.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM evaluations GROUP BY status ORDER BY status');
    result.note =
      `${sent.length} deliveries in ${sendSeconds.toFixed(1)} s to ${refs.length} refs, receipt p50 ${figures.p50.toFixed(0)} ms p99 ${figures.p99.toFixed(0)} ms; ` +
      `${figures.stored} stored, ${figures.redeliveries} redeliveries answered duplicate, ${figures.refused} bad signatures answered 401; ` +
      `evals ${rows.map((r) => `${r.n} ${r.status}`).join(', ')}`;
    return result;
  });
}
