/**
 * Signals, queries and workflow ids, defined once and imported by workflows, the API and the CLI.
 * Signal names are the words of the command line, so `temporal workflow signal --name cancel`
 * does what `harmonia-ci cancel` does.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { DeploymentStart } from '../activities/deploy/types.ts';
import type { NodeHeartbeat } from '../activities/types.ts';
import type { BuildResult, EvalProgress, PushEvent } from './types.ts';

/** A new commit on the ref (refWorkflow). */
export const pushSignal = defineSignal<[PushEvent]>('push');
/** Cancel an eval and its exclusive builds (evalWorkflow), or a build that has not started (buildWorkflow). */
export const cancelSignal = defineSignal<[]>('cancel');
/** Build a derivation again in the ref's latest eval (refWorkflow; the argument is the drv path). */
export const rebuildSignal = defineSignal<[string?]>('rebuild');
/** Put every failed and dep-failed build of the ref's latest eval back to pending (refWorkflow). */
export const rebuildFailedSignal = defineSignal<[]>('rebuild-failed');
/** Evaluate the ref's current commit again (refWorkflow). */
export const reEvaluateSignal = defineSignal<[]>('re-evaluate');

/** An eval wants to hear about a build's result (buildWorkflow). */
export const subscribeSignal = defineSignal<[string]>('subscribe');
/** An eval no longer wants a build (buildWorkflow); the build is cancelled when nobody wants it. */
export const unsubscribeSignal = defineSignal<[string]>('unsubscribe');
/** A builder has taken the build (buildWorkflow); the argument is the builder's host. */
export const buildStartedSignal = defineSignal<[string]>('build-started');
/** A build an eval waits for has ended (evalWorkflow). The payload is informative: state lives in PostgreSQL. */
export const buildFinishedSignal = defineSignal<[BuildResult]>('build-finished');

/**
 * An eval workflow continues as new after this many build results (signals): every build of an
 * eval of 10,000 derivations sends one, and a run may take at most 10,000.
 */
export const SIGNALS_BEFORE_CONTINUE = 4000;

export const evalProgressQuery = defineQuery<EvalProgress | undefined>('progress');
export const buildStatusQuery = defineQuery<BuildResult>('status');

/** A builder's periodic registration (nodeWorkflow). */
export const nodeHeartbeatSignal = defineSignal<[NodeHeartbeat]>('heartbeat');
/** Stop (true, the default) or resume (false) taking builds on the node (nodeWorkflow). */
export const nodeDrainSignal = defineSignal<[boolean?]>('drain');
/** The current tail of a build log running on the node; the latest one per derivation wins (nodeWorkflow). */
export const nodeLogTailSignal = defineSignal<[{ drvPath: string; text: string }]>('log-tail');
/** What the builder polls: `draining` is undefined until the node workflow knows it. */
export const nodeStatusQuery = defineQuery<{ draining?: boolean }>('node-status');

/** A deployment for the environment (deployWorkflow); it supersedes one still waiting to be sent. */
export const deploySignal = defineSignal<[DeploymentStart]>('deploy');
/** Approve the deployment waiting for approval (deployWorkflow); `by` names who approved it. */
export const approveSignal = defineSignal<[{ by?: string; deploymentId?: string }?]>('approve');

export const refWorkflowId = (projectName: string, ref: string): string => `ref/${projectName}/${ref}`;
export const deployWorkflowId = (projectName: string, environment: string): string => `deploy/${projectName}/${environment}`;
export const evalWorkflowId = (evalId: string): string => `eval/${evalId}`;
export const nodeWorkflowId = (name: string): string => `node/${name}`;
/** `build/<hash part>` of `/nix/store/<hash part>-<name>.drv`. */
export function buildWorkflowId(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf('/') + 1);
  return `build/${base.slice(0, 32)}`;
}

/** The task queue of the coordinator: every workflow and the control activities. */
export const COORDINATOR_QUEUE = 'harmonia-ci';
export const EVAL_QUEUE = 'eval';
export const SIGNER_QUEUE = 'signer';

/** Builders poll the queue of each system (and feature set) they serve. */
export function builderQueue(system: string, features: readonly string[] = []): string {
  const sorted = [...new Set(features)].sort();
  return sorted.length === 0 ? `build-${system}` : `build-${system}+${sorted.join('+')}`;
}

/** Failure type of an upload whose presigned target expired before it was used: ask the signer again. */
export const UPLOAD_EXPIRED = 'UploadTargetExpired';

/** Every builder host also polls a queue of its own for work that must happen where it built. */
export const hostQueue = (host: string): string => `host-${host}`;

/** Merge-queue refs test what will be merged: a newer push never cancels them. */
export function isMergeQueueRef(ref: string): boolean {
  const branch = ref.replace(/^refs\/heads\//, '');
  return branch.startsWith('gh-readonly-queue/') || branch === 'staging' || branch === 'trying';
}
