/**
 * evalWorkflow — `eval/<evalId>`: evaluate a jobset, then drive its builds to the end.
 *
 * The plan (which derivations need building and what each waits for) lives in PostgreSQL, not
 * in workflow state, so an eval of 10,000 derivations keeps a small history: each pass of
 * `advanceEval` starts the builds whose inputs are done, at most WINDOW open at a time (a
 * wavefront, so the Temporal server never holds thousands of idle build workflows), and
 * returns counts. Build results arrive as signals that only wake the loop; a missed one costs
 * at most POLL_INTERVAL.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DeployActivities } from '../activities/deploy/types.ts';
import type { NotifyActivities } from '../activities/notify/types.ts';
import type { CoordinatorActivities, EvaluateOutcome, EvaluatorActivities } from '../activities/types.ts';
import { buildFinishedSignal, cancelSignal, COORDINATOR_QUEUE, EVAL_QUEUE, evalProgressQuery, SIGNALS_BEFORE_CONTINUE } from './definitions.ts';
import { publishFromHost } from './publish.ts';
import { setWorkflowSearchAttributes } from './search.ts';
import { projectNameOf, type EvalProgress, type EvalWorkflowInput } from './types.ts';

/** Most build workflows one eval keeps open at once. */
export const WINDOW = 256;
const POLL_INTERVAL = '30 seconds';
/** How often a pass also checks that the build workflows the eval waits for still exist. */
const REPAIR_INTERVAL_MS = 2 * 60_000;
/** Runs recorded before it let an evaluator that failed on every attempt fail the workflow, leaving the eval `running`. */
const EVALUATOR_FAILURE_RECORDED = 'evaluator-failure-recorded';
/** Evaluations run again when the evaluator lost what it staged for publishing (activities/builder/upload.ts). */
const STAGING_MISSING = 'StagingMissing';
const CLOSURE_ROUNDS = 3;
/** Runs recorded before a finished eval started the deployments of its succeeded jobs. */
const DEPLOYMENTS_PLANNED = 'deployments-planned';
/** Runs recorded before a finished eval started its eval-finished and build-failed notifications. */
const NOTIFICATIONS_STARTED = 'notifications-started';
/**
 * Runs recorded before the "evaluating" status was sent beside the evaluation; before, the
 * evaluation waited for it (a task round trip on the way from a push to its first build).
 */
const START_REPORT_BESIDE = 'start-report-beside';
/** Commit statuses are refreshed at most this often while builds run (forges rate-limit them). */
const REPORT_INTERVAL_MS = 15_000;

// PostgreSQL bookkeeping runs as local activities, in the coordinator worker running this workflow.
const control = proxyLocalActivities<CoordinatorActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Cheap when no deployment is configured: one query, in the coordinator running this workflow.
const deployments = proxyLocalActivities<DeployActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Only starts the notify workflows (one query when no hook is configured); delivery happens there.
const notifications = proxyLocalActivities<NotifyActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Forge reports go through the task queue: they may wait out a forge outage for a long time.
const reports = proxyActivities<CoordinatorActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export async function evalWorkflow(input: EvalWorkflowInput): Promise<EvalProgress> {
  const self = workflowInfo().workflowId;
  let wake = true;
  let signals = 0;
  let progress: EvalProgress | undefined;
  // A build that ended cancelled may be one this eval still needs: check its workflow on the next pass.
  let repairDue = false;
  let repairedAt = Date.now();
  const main = new CancellationScope();

  setHandler(buildFinishedSignal, (result) => {
    wake = true;
    signals++;
    if (result?.status === 'cancelled') repairDue = true;
  });
  setHandler(cancelSignal, () => main.cancel());
  setHandler(evalProgressQuery, () => progress);
  setWorkflowSearchAttributes({ status: 'running' });

  try {
    return await main.run(async () => {
      if (input.mode === 'evaluate') {
        const starting = new StatusReporter(input.evalId);
        const ok = await evaluate(input, starting);
        if (!ok) return emptyProgress();
        // Usually long done: the evaluation takes longer than the report.
        await starting.flush();
      }

      // Reports run beside the loop: a forge outage delays statuses, never builds.
      const reporter = new StatusReporter(input.evalId);
      for (;;) {
        wake = false;
        const repair = repairDue || Date.now() - repairedAt >= REPAIR_INTERVAL_MS;
        if (repair) {
          repairDue = false;
          repairedAt = Date.now();
        }
        progress = await control.advanceEval({ evalId: input.evalId, evalWorkflowId: self, window: WINDOW, ...(repair ? { repair } : {}) });
        const summary = describe(input, progress);
        setCurrentDetails(summary);
        reporter.update(summary, progress.done);
        if (progress.done) break;
        await condition(() => wake, POLL_INTERVAL);
        if (signals >= SIGNALS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested) {
          await continueAsNew<typeof evalWorkflow>({ ...input, mode: 'resume' });
        }
      }
      await reporter.flush();
      if (patched(DEPLOYMENTS_PLANNED)) await deployments.planDeployments(input.evalId);
      if (patched(NOTIFICATIONS_STARTED)) await notifications.notifyEvalFinished(input.evalId);
      const failed = progress.failed + progress.depFailed + progress.timedOut + progress.cancelled > 0;
      setWorkflowSearchAttributes({ status: failed ? 'failed' : 'succeeded' });
      return progress;
    });
  } catch (error) {
    if (!isCancellation(error)) throw error;
    await CancellationScope.nonCancellable(async () => {
      await control.setEvalStatus(input.evalId, 'cancelled');
      await control.releaseEvalBuilds(input.evalId, self);
      await reports.reportEvalStatus(input.evalId);
      setWorkflowSearchAttributes({ status: 'cancelled' });
    });
    throw error;
  }
}

/** Sends commit statuses when the summary changes, at most every REPORT_INTERVAL_MS, never two at once. */
class StatusReporter {
  private sent = '';
  private sentAt = 0;
  private wanted = '';
  private running: Promise<void> | undefined;

  constructor(private readonly evalId: string) {}

  update(summary: string, now: boolean): void {
    this.wanted = summary;
    if (this.running || summary === this.sent) return;
    if (!now && Date.now() - this.sentAt < REPORT_INTERVAL_MS) return;
    this.sent = summary;
    this.sentAt = Date.now();
    this.running = reports.reportEvalStatus(this.evalId).finally(() => {
      this.running = undefined;
    });
  }

  /** Waits for the report in flight, then sends the latest state if it was not sent. */
  async flush(): Promise<void> {
    await this.running;
    if (this.wanted !== this.sent) {
      this.sent = this.wanted;
      await reports.reportEvalStatus(this.evalId);
    }
  }
}

async function evaluate(input: EvalWorkflowInput, reporter: StatusReporter): Promise<boolean> {
  const evaluator = proxyActivities<EvaluatorActivities>({
    taskQueue: EVAL_QUEUE,
    // The evaluator enforces the eval timeout itself; this only bounds a lost evaluator.
    startToCloseTimeout: input.settings.evalTimeoutMs + 5 * 60_000,
    heartbeatTimeout: '1 minute',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['EvalFailed'] },
  });
  setCurrentDetails(`evaluating ${input.source.url}${input.sha ? ` at ${input.sha.slice(0, 12)}` : ''}`);
  await control.setEvalStatus(input.evalId, 'running');
  const beside = patched(START_REPORT_BESIDE);
  if (beside) reporter.update('evaluating', true);
  else await reports.reportEvalStatus(input.evalId);
  let outcome: EvaluateOutcome;
  for (let round = 1; ; round++) {
    try {
      outcome = await evaluator.evaluate({ evalId: input.evalId, source: input.source, settings: input.settings, projectName: projectNameOf(input) });
    } catch (error) {
      // Every attempt failed (the evaluator host died each time, or the eval ran past its timeout):
      // the eval ends failed with the reason, never left running.
      if (isCancellation(error) || !patched(EVALUATOR_FAILURE_RECORDED)) throw error;
      outcome = { ok: false, error: `the evaluator failed: ${describeFailure(error)}`, jobs: 0, attrErrors: 0, otherSystems: 0, toBuild: 0, cached: 0 };
    }
    if (!outcome.ok || !outcome.closure) break;
    // Builders on other machines read the `.drv` files from the cache: publish them before any build starts.
    const failure = await publishClosure(outcome.closure);
    if (!failure) break;
    // The evaluator restarted and its staged files are gone: evaluating again stages them again.
    if (failure.type === STAGING_MISSING && round < CLOSURE_ROUNDS) continue;
    outcome = { ...outcome, ok: false, error: `the derivations could not be published for the builders: ${failure.message}` };
    break;
  }
  if (!outcome.ok) {
    await control.setEvalStatus(input.evalId, 'failed', outcome.error);
    if (beside) {
      // After the "evaluating" report, never beside it: the forge keeps the last status it got.
      reporter.update('evaluation failed', true);
      await reporter.flush();
    } else {
      await reports.reportEvalStatus(input.evalId);
    }
    if (patched(NOTIFICATIONS_STARTED)) await notifications.notifyEvalFinished(input.evalId);
    setWorkflowSearchAttributes({ status: 'failed' });
    setCurrentDetails(`evaluation failed: ${outcome.error ?? 'unknown error'}`);
    return false;
  }
  await control.setEvalStatus(input.evalId, 'succeeded');
  return true;
}

/** Publishes the staged closure batches from the evaluator's host; the failure, if one ended it. */
async function publishClosure(closure: NonNullable<EvaluateOutcome['closure']>): Promise<{ type: string | undefined; message: string } | undefined> {
  let paths = 0;
  for (const batch of closure.batches) {
    setCurrentDetails(`publishing derivations for the builders: ${paths} paths done`);
    try {
      await publishFromHost(batch, { host: closure.host });
    } catch (error) {
      if (isCancellation(error)) throw error;
      let type: string | undefined;
      for (let cause: unknown = error; cause instanceof Error; cause = (cause as { cause?: unknown }).cause) {
        if (cause instanceof ApplicationFailure) type = cause.type ?? type;
      }
      return { type, message: describeFailure(error) };
    }
    paths += batch.outputs.length;
  }
  return undefined;
}

function describe(input: EvalWorkflowInput, p: EvalProgress): string {
  const finished = p.succeeded + p.cached;
  const parts = [`${finished}/${p.total} built`];
  if (p.failed + p.timedOut > 0) parts.push(`${p.failed + p.timedOut} failed`);
  if (p.depFailed > 0) parts.push(`${p.depFailed} dep-failed`);
  if (p.building > 0) parts.push(`${p.building} building`);
  if (p.repaired) parts.push(`${p.repaired} lost build(s) started again`);
  return `**${projectNameOf(input)}** ${input.ref} @ ${input.sha.slice(0, 12)}: ${parts.join(', ')}`;
}

/** The innermost message of a failure: an activity's own error rather than "activity task failed". */
function describeFailure(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  for (let cause = (error as { cause?: unknown }).cause; cause instanceof Error; cause = (cause as { cause?: unknown }).cause) {
    message = cause.message;
  }
  return message;
}

function emptyProgress(): EvalProgress {
  return {
    total: 0, cached: 0, succeeded: 0, failed: 0, depFailed: 0, cancelled: 0, timedOut: 0, building: 0, pending: 0,
    done: true,
  };
}
