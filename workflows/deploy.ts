/**
 * deployWorkflow — `deploy/<project>/<environment>`: the deployments of one environment, one at a
 * time. Deployments arrive as `deploy` signals (signal-with-start from planDeployments). One that
 * needs approval waits for the `approve` signal; a newer deployment arriving while one waits (for
 * approval, or behind the one in flight) supersedes it. A deployment in flight runs to its end:
 * the request goes to the agent (transport failures retried), then its signed report is awaited
 * until the target's timeout. State lives in PostgreSQL (`deployments`); the workflow holds only
 * the queue. Each recorded state is mirrored on the forge (a GitHub Deployment's statuses) in the
 * background, one report after the other: a slow or rate-limited forge never holds a deployment.
 */
import { ApplicationFailure, ActivityFailure, condition, continueAsNew, patched, proxyActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DeployActivities, DeploymentOutcome, DeploymentStart, DeploymentUpdate } from '../activities/deploy/types.ts';
import type { NotifyActivities } from '../activities/notify/types.ts';
import { approveSignal, COORDINATOR_QUEUE, deploySignal } from './definitions.ts';

export interface DeployWorkflowInput {
  project: string;
  environment: string;
}

/** Deployments handled before the workflow continues as new, keeping its history short. */
const DEPLOYMENTS_BEFORE_CONTINUE = 50;
/** An idle environment's workflow ends after this long; the next deployment starts it again. */
const IDLE_TIMEOUT = '7 days';

const records = proxyActivities<DeployActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Transport failures (agent down, 5xx) are retried with backoff; a refusal is final.
const agent = proxyActivities<DeployActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 8, nonRetryableErrorTypes: ['AgentRefused', 'DeploymentMisconfigured'] },
});

/** States after which nothing happens to a deployment any more. */
const UNFINISHED = ['pending', 'awaiting-approval', 'sent', 'running'];

// Only starts the notify workflows; delivery, and waiting on a receiver, happens there.
const notifications = proxyActivities<NotifyActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Forge reports read the state from PostgreSQL, so a late one still sends the latest state.
const forge = proxyActivities<DeployActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '2 minutes', maximumAttempts: 10 },
});

export async function deployWorkflow(input: DeployWorkflowInput): Promise<void> {
  // Serialised, so the first report of a deployment creates its forge deployment before the next reports.
  let forgeReports: Promise<void> = Promise.resolve();
  const record = async (deploymentId: string, update: DeploymentUpdate): Promise<void> => {
    await records.recordDeployment(deploymentId, update);
    if (!UNFINISHED.includes(update.status) && patched('deployment-notifications')) await notifications.notifyDeploymentFinished(deploymentId);
    if (!patched('forge-deployments')) return;
    forgeReports = forgeReports.then(() => forge.reportForgeDeployment(deploymentId)).catch(() => undefined);
  };
  let waiting: DeploymentStart | undefined;
  let inFlight: string | undefined;
  let approvedBy: string | undefined;
  const superseded: DeploymentStart[] = [];
  let handled = 0;

  setHandler(deploySignal, (start) => {
    // A repeated trigger of the same deployment changes nothing.
    if (start.deploymentId === inFlight || start.deploymentId === waiting?.deploymentId) return;
    if (waiting) superseded.push(waiting);
    waiting = start;
    approvedBy = undefined;
  });
  setHandler(approveSignal, (approval) => {
    if (!waiting || (approval?.deploymentId && approval.deploymentId !== waiting.deploymentId)) return;
    approvedBy = approval?.by ?? 'unknown';
  });

  for (;;) {
    for (const old of superseded.splice(0)) {
      await record(old.deploymentId, { status: 'superseded', reason: 'a newer deployment to the same environment arrived first' });
    }
    if (!waiting) {
      if (handled >= DEPLOYMENTS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested) {
        await forgeReports;
        await continueAsNew<typeof deployWorkflow>(input);
      }
      setCurrentDetails(`**${input.project}** ${input.environment}: idle`);
      if (!(await condition(() => waiting !== undefined || superseded.length > 0, IDLE_TIMEOUT))) {
        await forgeReports;
        return;
      }
      continue;
    }
    const current = waiting;
    if (current.approval && approvedBy === undefined) {
      await record(current.deploymentId, { status: 'awaiting-approval' });
      setCurrentDetails(`**${input.project}** ${input.environment}: ${current.storePath} awaits approval (signal \`approve\`)`);
      await condition(() => approvedBy !== undefined || waiting !== current);
      if (waiting !== current) continue;
    }
    waiting = undefined;
    inFlight = current.deploymentId;
    setCurrentDetails(`**${input.project}** ${input.environment}: deploying ${current.storePath}`);
    await record(current.deploymentId, { status: 'sent', ...(approvedBy ? { approvedBy } : {}) });
    approvedBy = undefined;
    const outcome = await deploy(current, record);
    await record(current.deploymentId, outcome);
    inFlight = undefined;
    handled++;
  }
}

/** Sends one deployment and waits for its report; failures become the outcome, never the workflow's failure. */
async function deploy(start: DeploymentStart, record: (deploymentId: string, update: DeploymentUpdate) => Promise<void>): Promise<DeploymentOutcome> {
  try {
    const accepted = await agent.requestDeployment(start.deploymentId);
    if (accepted.status !== 'running') return accepted;
    await record(start.deploymentId, { status: 'running' });
    const deadline = Date.now() + start.timeoutMs;
    const awaiting = proxyActivities<DeployActivities>({
      taskQueue: COORDINATOR_QUEUE,
      startToCloseTimeout: start.timeoutMs + 60_000,
      heartbeatTimeout: '1 minute',
      retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', nonRetryableErrorTypes: ['AgentRefused', 'DeploymentTimedOut'] },
    });
    return await awaiting.awaitDeploymentReport(start.deploymentId, deadline);
  } catch (error) {
    const cause = error instanceof ActivityFailure ? error.cause : error;
    if (cause instanceof ApplicationFailure) {
      return { status: cause.type === 'DeploymentTimedOut' ? 'timed-out' : cause.type === 'AgentRefused' ? 'refused' : 'failed', reason: cause.message };
    }
    throw error;
  }
}
