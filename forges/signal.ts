/**
 * The end of every forge path (webhook, `/ci run`, polling): a `push` signal to the ref's
 * workflow, started if it is not running — exactly what `harmonia-ci run` does for a checkout.
 */
import type { Client } from '@temporalio/client';
import { COORDINATOR_QUEUE, pushSignal, refWorkflowId } from '../workflows/definitions.ts';
import type { refWorkflow } from '../workflows/ref.ts';
import { searchAttributePairs } from '../workflows/search.ts';
import type { PushEvent } from '../workflows/types.ts';

export interface ForgePush {
  /** `projects.name`, e.g. `owner/repo`. */
  projectName: string;
  ref: string;
  sha: string;
  treeHash?: string;
  cloneUrl: string;
  event: 'push' | 'pull_request' | 'poll';
}

/**
 * The git source Nix fetches: the clone URL with the ref, so a fetch from a remote finds commits
 * that are not on the default branch (pull request heads).
 */
export function gitSourceUrl(cloneUrl: string, ref: string): string {
  return `${cloneUrl}${cloneUrl.includes('?') ? '&' : '?'}ref=${encodeURIComponent(ref).replace(/%2F/g, '/')}`;
}

/** Signals (or starts) the ref workflow with the push; the eval itself is created by the workflow. */
export async function signalPush(client: Client, push: ForgePush): Promise<void> {
  const event: PushEvent = {
    sha: push.sha,
    ...(push.treeHash ? { treeHash: push.treeHash } : {}),
    source: { kind: 'git', url: gitSourceUrl(push.cloneUrl, push.ref), rev: push.sha },
    event: push.event,
  };
  await client.workflow.signalWithStart<typeof refWorkflow, [PushEvent]>('refWorkflow', {
    workflowId: refWorkflowId(push.projectName, push.ref),
    taskQueue: COORDINATOR_QUEUE,
    args: [{ projectName: push.projectName, ref: push.ref }],
    signal: pushSignal,
    signalArgs: [event],
    typedSearchAttributes: searchAttributePairs({ project: push.projectName, ref: push.ref }) as never,
    staticSummary: `${push.projectName} ${push.ref}`,
  });
}
