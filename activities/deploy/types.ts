/** What the deploy workflow and its activities exchange (workflow-safe: types only). */

/** States of a deployment, as the `deployments` table records them. */
export type DeploymentStatus =
  | 'pending'
  | 'awaiting-approval'
  | 'sent'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'rolled-back'
  | 'refused'
  | 'superseded'
  | 'timed-out';

/** One deployment handed to the workflow of its environment. */
export interface DeploymentStart {
  /** The `deployments` row id. */
  deploymentId: string;
  storePath: string;
  approval: boolean;
  timeoutMs: number;
}

/** How a deployment ended on the agent, or stands after the request. */
export interface DeploymentOutcome {
  status: DeploymentStatus;
  reason?: string;
  log?: string;
}

export interface DeploymentUpdate extends DeploymentOutcome {
  approvedBy?: string;
}

/** The coordinator's deploy activities (activities/deploy/index.ts). */
export interface DeployActivities {
  /** Starts (or signals) the deploy workflow of every target whose job succeeded in this eval; how many. */
  planDeployments(evalId: string): Promise<number>;
  recordDeployment(deploymentId: string, update: DeploymentUpdate): Promise<void>;
  /** Mirrors the deployment's recorded state on its project's forge (a GitHub Deployment and its statuses). */
  reportForgeDeployment(deploymentId: string): Promise<void>;
  /** Sends the signed request; `running` once the agent accepted it, else why not. */
  requestDeployment(deploymentId: string): Promise<DeploymentOutcome>;
  /** Asks the agent for its report until it has one or `deadline` (ms since the epoch) passes. */
  awaitDeploymentReport(deploymentId: string, deadline: number): Promise<DeploymentOutcome>;
}
