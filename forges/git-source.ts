/**
 * What a forge push means to Nix: the repository's clone URL fetched at the pushed commit. Every
 * forge path (webhook, `/ci run`, polling) hands the result to `signalPush` in `temporal/push.ts`.
 */
import type { PushEvent } from '../workflows/types.ts';

export interface ForgeCommit {
  cloneUrl: string;
  ref: string;
  sha: string;
  treeHash?: string;
  event: 'push' | 'pull_request' | 'poll';
}

/**
 * The git source Nix fetches: the clone URL with the ref, so a fetch from a remote finds commits
 * that are not on the default branch (pull request heads).
 */
export function gitSourceUrl(cloneUrl: string, ref: string): string {
  return `${cloneUrl}${cloneUrl.includes('?') ? '&' : '?'}ref=${encodeURIComponent(ref).replace(/%2F/g, '/')}`;
}

/** The push event of a commit a forge reported. */
export function forgePushEvent(commit: ForgeCommit): PushEvent {
  return {
    sha: commit.sha,
    ...(commit.treeHash ? { treeHash: commit.treeHash } : {}),
    source: { kind: 'git', url: gitSourceUrl(commit.cloneUrl, commit.ref), rev: commit.sha },
    event: commit.event,
  };
}
