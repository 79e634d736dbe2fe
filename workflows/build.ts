/**
 * buildWorkflow — `build/<drv hash>`: one per derivation, shared by every eval that needs it.
 *
 * Policy: repeat a final result rather than build twice; retry infrastructure faults (a builder
 * that vanished, an upload that broke) up to `maxAttempts` with backoff, but never a build that
 * failed by itself; give up a build nobody wants any more unless it is already running — its
 * output is useful in the cache. When it may start, and who hears of its end, is the
 * scheduler's (activities/coordinator/scheduler.ts): an eval starts a build only once its
 * inputs have succeeded, and the result reaches the evals through a coordinator activity.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import type { Priority } from '@temporalio/common';
import type { BuilderActivities, BuildInputs, BuildStart, CoordinatorActivities, StagedUpload } from '../activities/types.ts';
import {
  buildFinishedSignal,
  buildStartedSignal,
  buildStatusQuery,
  builderQueue,
  cancelSignal,
  subscribeSignal,
  unsubscribeSignal,
} from './definitions.ts';
import { DEFAULT_PUBLISH_DEADLINE_MS, isPastPublishDeadline, publishFromHost } from './publish.ts';
import { setWorkflowSearchAttributes } from './search.ts';
import type { BuildResult, BuildStatus, BuildWorkflowInput } from './types.ts';

/** Task-queue priority of manual rebuilds: before the default (3). */
const URGENT_PRIORITY_KEY = 1;
/** Task-queue priority of builds of a project over its share of recent builder time: after the default (3). */
const OVER_SHARE_PRIORITY_KEY = 4;
/** Attempts for infrastructure faults, the first one included, unless the input says (`limits.attempts`). */
export const MAX_ATTEMPTS = 3;
/**
 * Runs recorded before this patch told late subscribers by signal from the workflow; replaying
 * them keeps that path (LegacyPath below). Checked only where the paths part, so the marker is
 * written only by runs that have late subscribers.
 */
export const SCHEDULER_DECIDES = 'scheduler-decides';
/** Runs recorded before it built again when publishing gave up; now storage is waited out and then the build fails. */
const PUBLISH_DEADLINE = 'publish-deadline';
/**
 * Runs recorded before it did not publish a failed build's log: its builder staged none. Checked
 * only when a failed build's outcome carries a staged log.
 */
const FAILED_BUILD_LOGS = 'failed-build-logs';
/** How long storage that is away is waited out for a failed build's log, which is no reason to hold the failure back long. */
const FAILED_LOG_DEADLINE_MS = 5 * 60_000;
/** The builder enforces the build's own wall clock; this only bounds a builder gone silent. */
const BUILDER_HEARTBEAT_TIMEOUT = '2 minutes';
const BUILD_ACTIVITY_TIMEOUT = '5 hours';
const INPUT_POLL_INTERVAL = '10 seconds';

// Bookkeeping in PostgreSQL runs as local activities: in the coordinator worker that runs this
// workflow, with no round trip through a task queue. PostgreSQL may be away for a while: keep
// trying, never lose the result.
const control = proxyLocalActivities<CoordinatorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export async function buildWorkflow(input: BuildWorkflowInput): Promise<BuildResult> {
  const subscribers = new Set(input.subscribers);
  let unwanted = false;
  let current: BuildResult = { drvPath: input.drvPath, status: 'pending' };

  setHandler(subscribeSignal, (evalWorkflowId) => {
    subscribers.add(evalWorkflowId);
    unwanted = false;
  });
  setHandler(unsubscribeSignal, (evalWorkflowId) => {
    subscribers.delete(evalWorkflowId);
    if (subscribers.size === 0) unwanted = true;
  });
  setHandler(cancelSignal, () => {
    unwanted = true;
  });
  setHandler(buildStatusQuery, () => current);
  let startedOn: string | undefined;
  setHandler(buildStartedSignal, (host) => {
    startedOn = host;
  });

  // The status search attribute changes with the status only (it starts as pending): each upsert
  // is a history event and a visibility write.
  let shownStatus: BuildStatus = 'pending';
  const show = (status: BuildStatus, detail?: string): void => {
    current = { ...current, status };
    if (status !== shownStatus) {
      shownStatus = status;
      setWorkflowSearchAttributes({ status });
    }
    setCurrentDetails(`**${input.drvName}** (${input.system}): ${status}${detail ? ` — ${detail}` : ''}`);
  };
  show('pending');

  const told = new Set<string>();
  const finish = async (result: BuildResult, attempt?: number): Promise<BuildResult> => {
    current = result;
    show(result.status, result.rootCause ?? result.error);
    // Recording the result and telling the evals is one local activity.
    for (const id of await control.finishBuild({ ...result, attempt }, result, [...subscribers])) told.add(id);
    return result;
  };

  const result = await runBuild(input, {
    show,
    finish,
    isUnwanted: () => unwanted,
    startedOn: () => startedOn,
    resetStart: () => {
      startedOn = undefined;
    },
  });
  // A result repeated from PostgreSQL was told to nobody yet; subscribers may also have arrived meanwhile.
  await notifySubscribers(subscribers, told, result);
  return result;
}

interface BuildHooks {
  show(status: BuildStatus, detail?: string): void;
  finish(result: BuildResult, attempt?: number): Promise<BuildResult>;
  isUnwanted(): boolean;
  /** The host that announced it took the current attempt, if any. */
  startedOn(): string | undefined;
  resetStart(): void;
}

async function runBuild(input: BuildWorkflowInput, hooks: BuildHooks): Promise<BuildResult> {
  const { drvPath } = input;
  const maxAttempts = input.maxAttempts ?? MAX_ATTEMPTS;
  // A first run is given what beginBuild would answer by the scheduler that started it.
  const begun: BuildStart = input.begun ? { inputs: input.begun } : await control.beginBuild(drvPath);
  if (begun.result) {
    hooks.show(begun.result.status);
    return begun.result;
  }
  let buildInputs = begun.inputs;
  if (!buildInputs) {
    // Only runs recorded when a build could begin before its inputs were done.
    const waited = await LegacyPath.waitForInputs(drvPath, begun, hooks);
    if (!('inputPaths' in waited)) return waited;
    buildInputs = waited;
  }

  const builder = proxyActivities<BuilderActivities>({
    taskQueue: builderQueue(input.system, input.requiredSystemFeatures),
    priority: buildPriority(input),
    startToCloseTimeout: BUILD_ACTIVITY_TIMEOUT,
    heartbeatTimeout: input.heartbeatTimeoutMs ?? BUILDER_HEARTBEAT_TIMEOUT,
    retry: { maximumAttempts: 1 },
    // A build already running finishes; one still queued is withdrawn at once.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });

  let lastFault = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (hooks.isUnwanted()) return hooks.finish({ drvPath, status: 'cancelled' }, attempt);
    const waiting = `waiting for a ${builderQueue(input.system, input.requiredSystemFeatures)} builder`;
    hooks.show('pending', attempt > 1 ? `${waiting} (attempt ${attempt} of ${maxAttempts})` : waiting);
    hooks.resetStart();
    const announced = condition(() => hooks.startedOn() !== undefined).then(async () => {
      const host = hooks.startedOn()!;
      hooks.show('building', `on ${host}${attempt > 1 ? `, attempt ${attempt} of ${maxAttempts}` : ''}`);
      await control.recordBuild({ drvPath, status: 'building', attempt, builder: host });
    });
    const scope = new CancellationScope();
    void condition(() => hooks.isUnwanted()).then(() => scope.cancel());
    let outcome;
    try {
      outcome = await scope.run(() => builder.buildDerivation({ drvPath, ...buildInputs }));
    } catch (error) {
      if (isCancellation(error)) return hooks.finish({ drvPath, status: 'cancelled' }, attempt);
      lastFault = describeFault(error);
      await backoff(attempt, maxAttempts);
      continue;
    }
    // The builder announces itself before it builds: keep the records in that order.
    if (hooks.startedOn() !== undefined) await announced;
    if (outcome.status !== 'succeeded' && outcome.status !== 'failed-with-output') {
      // Before the failure is recorded: a rebuild, which only a recorded failure allows, must find
      // this run ended, and its log must replace this one, not the other way round.
      if (outcome.staged && !outcome.published && patched(FAILED_BUILD_LOGS)) await publishFailedBuildLog(outcome.staged, outcome.host, input);
      return hooks.finish({ drvPath, status: outcome.status, error: outcome.error }, attempt);
    }
    // A build that marked itself failed (nix-support/failed) is published all the same.
    const built = { drvPath, status: outcome.status, ...(outcome.error ? { error: outcome.error } : {}), ...(outcome.products ? { products: outcome.products } : {}) };

    if (outcome.published) {
      // The builder shares a process with a signer and published the outputs itself.
      return hooks.finish({ ...built, outputs: outcome.published.outputs }, attempt);
    }

    hooks.show('uploading');
    let published;
    try {
      [published] = await Promise.all([
        publishFromHost(outcome.staged!, { host: outcome.host, heartbeatTimeoutMs: input.heartbeatTimeoutMs, deadlineMs: input.publishDeadlineMs }),
        control.recordBuild({ drvPath, status: 'uploading', attempt, builder: outcome.host }),
      ]);
    } catch (error) {
      // Storage stayed away past the deadline: building again would not help.
      if (isPastPublishDeadline(error) && patched(PUBLISH_DEADLINE)) {
        const deadline = input.publishDeadlineMs ?? DEFAULT_PUBLISH_DEADLINE_MS;
        const waited = deadline >= 60_000 ? `${Math.round(deadline / 60_000)} min` : `${Math.round(deadline / 1000)} s`;
        return hooks.finish(
          { drvPath, status: 'failed', error: `the build succeeded, but the cache did not take its outputs within ${waited}: ${describeFault(error)}` },
          attempt,
        );
      }
      lastFault = `upload from ${outcome.host} failed: ${describeFault(error)}`;
      await backoff(attempt, maxAttempts);
      continue;
    }
    return hooks.finish({ ...built, outputs: published.outputs }, attempt);
  }
  return hooks.finish(
    { drvPath, status: 'failed', error: `gave up after ${maxAttempts} attempts; last fault: ${lastFault}` },
    maxAttempts,
  );
}

/**
 * Uploads and publishes the log a failed build staged on `host`: the cache then serves it to
 * `nix log` until a rebuild's log replaces it. A log that cannot be published (within
 * FAILED_LOG_DEADLINE_MS) changes nothing about the build.
 */
async function publishFailedBuildLog(staged: StagedUpload, host: string, input: BuildWorkflowInput): Promise<void> {
  try {
    await publishFromHost(staged, {
      host,
      heartbeatTimeoutMs: input.heartbeatTimeoutMs,
      deadlineMs: Math.min(input.publishDeadlineMs ?? DEFAULT_PUBLISH_DEADLINE_MS, FAILED_LOG_DEADLINE_MS),
    });
  } catch (error) {
    if (isCancellation(error)) throw error;
    log.warn(`the log of the failed build ${staged.drvPath} was not published: ${describeFault(error)}`);
  }
}

/**
 * Where the build stands among waiting builds on its queue. The priority key orders strictly:
 * manual rebuilds first (1), then the default (3), then builds of projects that had used more
 * than their share of recent builder time when the build started (4). Among builds with the same
 * key, Temporal's fairness keys and weights dispatch each project's waiting builds in proportion
 * to its shares. So the decayed usage decides which projects go first at all, and the weights
 * share the builders between projects on the same footing, e.g. between two projects both over.
 */
function buildPriority(input: BuildWorkflowInput): Priority {
  const priorityKey = input.urgent ? URGENT_PRIORITY_KEY : input.overShare ? OVER_SHARE_PRIORITY_KEY : undefined;
  return {
    ...(priorityKey ? { priorityKey } : {}),
    ...(input.fairness ? { fairnessKey: input.fairness.key, fairnessWeight: input.fairness.weight } : {}),
  };
}

async function backoff(attempt: number, maxAttempts: number): Promise<void> {
  if (attempt < maxAttempts) await sleep(`${5 * 2 ** (attempt - 1)} seconds`);
}

function describeFault(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
}

/** Tells every interested eval not told yet, through the scheduler; one that has gone away is no reason to fail. */
async function notifySubscribers(subscribers: Set<string>, told: Set<string>, result: BuildResult): Promise<void> {
  // Subscribers may arrive while we are telling the others: loop until none is left out.
  for (;;) {
    const pending = [...subscribers].filter((id) => !told.has(id));
    if (pending.length === 0) return;
    for (const id of pending) told.add(id);
    if (patched(SCHEDULER_DECIDES)) await control.announceBuild(result, pending);
    else await LegacyPath.signalEvals(pending, result);
  }
}

/**
 * What runs recorded before the scheduler alone decided did, kept so their histories replay:
 * a build that began before its inputs were done checked them itself every INPUT_POLL_INTERVAL
 * (beginBuild now always answers with the inputs, as the eval starts only ready builds), and late
 * subscribers were signalled from the workflow (before SCHEDULER_DECIDES). New runs never take it.
 */
const LegacyPath = {
  async waitForInputs(drvPath: string, begun: BuildStart, hooks: BuildHooks): Promise<BuildResult | BuildInputs> {
    // What beginBuild answered then: whether the inputs were done, and the builder's inputs only if so.
    const then = begun as { ready?: boolean; rootCause?: string; inputs?: BuildInputs };
    let inputs: { ready?: boolean; rootCause?: string } = then;
    while (!inputs.ready && !inputs.rootCause) {
      if (hooks.isUnwanted()) return hooks.finish({ drvPath, status: 'cancelled' });
      await sleep(INPUT_POLL_INTERVAL);
      inputs = await control.checkBuildInputs(drvPath);
    }
    if (inputs.rootCause) return hooks.finish({ drvPath, status: 'dep-failed', rootCause: inputs.rootCause });
    return then.inputs ?? (await control.describeBuildInputs(drvPath));
  },

  async signalEvals(evalWorkflowIds: string[], result: BuildResult): Promise<void> {
    await Promise.all(
      evalWorkflowIds.map(async (id) => {
        try {
          await getExternalWorkflowHandle(id).signal(buildFinishedSignal, result);
        } catch {
          // The eval finished or was cancelled; it reads results from PostgreSQL anyway.
        }
      }),
    );
  },
};
