/**
 * What a forge deployment says about a `deployments` row: harmonia-ci's states mapped onto
 * GitHub's deployment states (queued → in_progress → success / failure; superseded → inactive).
 */
import type { DeploymentStatus } from '../activities/deploy/types.ts';
import { MAX_DESCRIPTION } from './statuses.ts';
import type { DeploymentState } from './types.ts';

export interface DeploymentFacts {
  status: DeploymentStatus;
  storePath: string;
  reason: string | null;
  approvedBy: string | null;
}

/** The forge state and description for a deployment as it stands. */
export function describeDeployment(facts: DeploymentFacts): { state: DeploymentState; description: string } {
  const [state, description] = stateOf(facts);
  return { state, description: description.length <= MAX_DESCRIPTION ? description : `${description.slice(0, MAX_DESCRIPTION - 1)}…` };
}

function stateOf(facts: DeploymentFacts): [DeploymentState, string] {
  const why = facts.reason ? `: ${facts.reason}` : '';
  switch (facts.status) {
    case 'pending':
      return ['queued', 'Queued'];
    case 'awaiting-approval':
      return ['queued', 'Waiting for approval'];
    case 'sent':
      return ['in_progress', facts.approvedBy ? `Approved by ${facts.approvedBy}; sent to the deploy agent` : 'Sent to the deploy agent'];
    case 'running':
      return ['in_progress', `Activating ${facts.storePath.replace(/^\/nix\/store\//, '')}`];
    case 'succeeded':
      return ['success', 'Active and healthy'];
    case 'failed':
      return ['failure', `Failed${why}`];
    case 'rolled-back':
      return ['failure', `Rolled back${why}`];
    case 'refused':
      return ['failure', `Refused by the deploy agent${why}`];
    case 'timed-out':
      return ['failure', `No report from the deploy agent in time${why}`];
    case 'superseded':
      return ['inactive', 'Superseded by a newer deployment'];
  }
}
