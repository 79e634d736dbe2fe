/**
 * refWorkflow — `ref/<project>/<ref>`: one per project and branch or pull request, long-lived.
 *
 * It turns pushes into evals: a new commit cancels the ref's running eval (except on merge-queue
 * refs, where every commit is tested), a sha already handled is ignored, and an identical tree
 * already evaluated successfully is skipped (createEval copies its results). It also takes the
 * command-line signals that act on the ref's latest eval: rebuild, rebuild-failed, re-evaluate.
 */
import {
  continueAsNew,
  condition,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { CoordinatorActivities } from '../activities/types.ts';
import {
  COORDINATOR_QUEUE,
  evalWorkflowId,
  isMergeQueueRef,
  pushSignal,
  reEvaluateSignal,
  rebuildFailedSignal,
  rebuildSignal,
} from './definitions.ts';
import { evalWorkflow } from './eval.ts';
import { searchAttributePairs, setWorkflowSearchAttributes } from './search.ts';
import { projectNameOf, type EvalWorkflowInput, type PushEvent, type RefWorkflowInput } from './types.ts';

/** How many handled shas to remember (a force push back to an old sha is evaluated again after that). */
const REMEMBERED_SHAS = 200;
const EVENTS_BEFORE_CONTINUE = 500;

const control = proxyActivities<CoordinatorActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

type RefAction =
  | { kind: 'push'; push: PushEvent }
  | { kind: 'rebuild'; drvPaths: string[] | 'failed' }
  | { kind: 're-evaluate' };

export async function refWorkflow(input: RefWorkflowInput): Promise<void> {
  const { ref } = input;
  const projectName = projectNameOf(input);
  const handled = input.handledShas ?? [];
  const actions: RefAction[] = (input.pending ?? []).map((push) => ({ kind: 'push', push }));
  let runningEvalId: string | undefined;
  let processed = 0;

  setHandler(pushSignal, (push) => {
    if (handled.includes(push.sha) || actions.some((a) => a.kind === 'push' && a.push.sha === push.sha)) return;
    actions.push({ kind: 'push', push });
  });
  setHandler(rebuildSignal, (drvPath) => {
    if (drvPath) actions.push({ kind: 'rebuild', drvPaths: [drvPath] });
  });
  setHandler(rebuildFailedSignal, () => {
    actions.push({ kind: 'rebuild', drvPaths: 'failed' });
  });
  setHandler(reEvaluateSignal, () => {
    actions.push({ kind: 're-evaluate' });
  });
  setWorkflowSearchAttributes({ project: projectName, ref });

  for (;;) {
    await condition(() => actions.length > 0);
    const action = actions.shift()!;
    processed++;

    if (action.kind === 'push') {
      handled.push(action.push.sha);
      if (handled.length > REMEMBERED_SHAS) handled.splice(0, handled.length - REMEMBERED_SHAS);
      // The new eval exists before the old one is cancelled, so the old one reports "superseded".
      const previous = runningEvalId;
      runningEvalId = await startEval(projectName, ref, action.push);
      if (previous && previous !== runningEvalId && !isMergeQueueRef(ref)) await cancelEval(previous);
    } else if (action.kind === 'rebuild') {
      const latest = await control.latestEval(projectName, ref);
      if (latest) runningEvalId = await resumeEval(projectName, ref, latest, action.drvPaths);
    } else {
      const latest = await control.latestEval(projectName, ref);
      if (latest) {
        if (runningEvalId) await cancelEval(runningEvalId);
        runningEvalId = await startEval(projectName, ref, { sha: latest.sha, source: latest.source, event: 're-evaluate' }, true);
      }
    }
    setCurrentDetails(`**${projectName}** ${ref}: latest eval ${runningEvalId ?? 'none'}`);

    if (actions.length === 0 && (processed >= EVENTS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested)) {
      await continueAsNew<typeof refWorkflow>({ projectName, ref, handledShas: handled, pending: [] });
    }
  }
}

async function cancelEval(evalId: string): Promise<void> {
  try {
    await getExternalWorkflowHandle(evalWorkflowId(evalId)).cancel();
  } catch {
    // Already finished: nothing to supersede.
  }
}

async function startEval(projectName: string, ref: string, push: PushEvent, fresh = false): Promise<string | undefined> {
  const started = await control.createEval({ projectName, ref, push, fresh });
  if (started.existed) return undefined;
  if (started.skippedBecauseOf) {
    // A skipped eval has no workflow of its own: its commit gets the statuses of its twin's results.
    await control.reportEvalStatus(started.evalId);
    return undefined;
  }
  const evalInput: EvalWorkflowInput = {
    evalId: started.evalId,
    projectName,
    ref,
    sha: push.sha,
    source: push.source,
    settings: started.settings,
    mode: 'evaluate',
  };
  await startEvalWorkflow(evalInput, push.sha, fresh);
  return started.evalId;
}

async function resumeEval(
  projectName: string,
  ref: string,
  latest: { evalId: string; sha: string; source: PushEvent['source'] },
  drvPaths: string[] | 'failed',
): Promise<string> {
  const reset = await control.resetBuilds(latest.evalId, drvPaths);
  if (reset > 0) {
    const settings = { attrs: [], allowIfd: true, evalTimeoutMs: 0, systems: [] };
    await startEvalWorkflow(
      { evalId: latest.evalId, projectName, ref, sha: latest.sha, source: latest.source, settings, mode: 'resume' },
      latest.sha,
      true,
    );
  }
  return latest.evalId;
}

async function startEvalWorkflow(evalInput: EvalWorkflowInput, sha: string, restart = false): Promise<void> {
  for (let tries = 0; ; tries++) {
    try {
      await startEvalChild(evalInput, sha);
      return;
    } catch (error) {
      if ((error as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw error;
      // A replayed webhook: the eval already runs, which is the idempotency we want. A restart
      // waits for the cancelled run of the same eval to close.
      if (!restart || tries >= 30) return;
      await sleep('1 second');
    }
  }
}

async function startEvalChild(evalInput: EvalWorkflowInput, sha: string): Promise<void> {
  {
    await startChild(evalWorkflow, {
      args: [evalInput],
      workflowId: evalWorkflowId(evalInput.evalId),
      taskQueue: COORDINATOR_QUEUE,
      // The eval outlives this run of the ref workflow (continue-as-new) and its superseding.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: searchAttributePairs({
        project: evalInput.projectName,
        ref: evalInput.ref,
        commit: sha,
        evalId: evalInput.evalId,
        status: 'queued',
      }) as never,
      staticSummary: `${evalInput.projectName} ${evalInput.ref} @ ${sha.slice(0, 12)} (${evalInput.mode})`,
    });
  }
}
