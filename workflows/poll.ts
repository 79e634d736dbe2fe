/**
 * pollWorkflow — `poll/<project>`: the fallback for forges whose webhooks cannot reach us. Every
 * poll interval a coordinator activity reads the default branch's head and, like a webhook,
 * signals the ref workflow (an activity does it: a workflow cannot signal-with-start another).
 * The ref workflow ignores a sha it already handled, so an unchanged head costs nothing. The
 * workflow ends when the project is disabled or its poll interval removed.
 */
import { continueAsNew, proxyActivities, setCurrentDetails, sleep, workflowInfo } from '@temporalio/workflow';
import type { CoordinatorActivities } from '../activities/types.ts';
import { COORDINATOR_QUEUE } from './definitions.ts';

/** Polls per run before continue-as-new keeps the history short. */
const POLLS_BEFORE_CONTINUE = 200;

const control = proxyActivities<CoordinatorActivities>({
  taskQueue: COORDINATOR_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes' },
});

export const pollWorkflowId = (projectName: string): string => `poll/${projectName}`;

export async function pollWorkflow(input: { projectName: string }): Promise<void> {
  for (let polls = 0; ; polls++) {
    const { intervalMs } = await control.pollProject(input.projectName);
    if (intervalMs === null) {
      setCurrentDetails(`**${input.projectName}**: polling stopped (project disabled or no poll interval)`);
      return;
    }
    setCurrentDetails(`**${input.projectName}**: default branch polled every ${Math.round(intervalMs / 1000)} s`);
    await sleep(intervalMs);
    if (polls + 1 >= POLLS_BEFORE_CONTINUE || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof pollWorkflow>(input);
    }
  }
}
