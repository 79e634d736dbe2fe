/**
 * From a webhook payload (GitHub's or Gitea's) to what it asks of us: a push to evaluate, a pull
 * request to check for trust, a `/ci run` comment, a change of App installation, or nothing.
 * Payload fields are read defensively: both forges add and rename fields over time.
 */
import type { ForgeKind } from './types.ts';

export type Intent =
  | { kind: 'push'; ref: string; sha: string; treeHash?: string }
  | {
      kind: 'pull_request';
      number: number;
      sha: string;
      author: string;
      sameRepository: boolean;
      /** Who caused the event: on `synchronize`, who pushed the head (absent in deliveries stored before). */
      sender?: string;
      action?: string;
    }
  | {
      kind: 'comment';
      number: number;
      commenter: string;
      /** The forge's id of the comment: one comment starts at most one build. */
      commentId?: number;
      /** When the comment was written (ISO 8601), to refuse a replayed delivery of an old one. */
      createdAt?: string;
      /** The pull request's head when the delivery arrived, pinned then (absent in deliveries stored before). */
      head?: { sha: string; author: string; sameRepository: boolean };
    };

export interface PayloadRepository {
  owner: string;
  name: string;
  forgeId?: number;
  installationId?: number;
}

export type ParsedEvent =
  | { kind: 'intent'; repository: PayloadRepository; intent: Intent }
  | { kind: 'installation'; installationId: number; action: string; removedRepositoryIds: number[] }
  | { kind: 'ignored'; reason: string };

/** A comment asking for a build of the pull request's current head. */
export const CI_RUN_COMMAND = /^\s*\/ci\s+run\b/m;
const ZERO_SHA = /^0+$/;
const PR_ACTIONS: Record<ForgeKind, readonly string[]> = {
  github: ['opened', 'reopened', 'synchronize'],
  gitea: ['opened', 'reopened', 'synchronized'],
};

type Json = Record<string, unknown>;

const obj = (value: unknown): Json => (value !== null && typeof value === 'object' ? (value as Json) : {});
const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** The git ref an intent's eval runs under. */
export function intentRef(intent: Intent): string {
  return intent.kind === 'push' ? intent.ref : `refs/pull/${intent.number}/head`;
}

/** What a GitHub or Gitea event asks for. `event` is the X-GitHub-Event / X-Gitea-Event header. */
export function parseForgeEvent(forge: ForgeKind, event: string, body: unknown): ParsedEvent {
  const payload = obj(body);
  if (forge === 'github' && (event === 'installation' || event === 'installation_repositories')) {
    const installationId = num(obj(payload.installation).id);
    if (installationId === undefined) return { kind: 'ignored', reason: 'installation event without an installation id' };
    const removed = Array.isArray(payload.repositories_removed) ? payload.repositories_removed : [];
    return {
      kind: 'installation',
      installationId,
      action: str(payload.action) ?? '',
      removedRepositoryIds: removed.map((r) => num(obj(r).id)).filter((id): id is number => id !== undefined),
    };
  }
  const repository = payloadRepository(payload);
  if (!repository) return { kind: 'ignored', reason: `${event} event without a repository` };
  const intent = eventIntent(forge, event, payload);
  return 'reason' in intent ? { kind: 'ignored', reason: intent.reason } : { kind: 'intent', repository, intent };
}

function eventIntent(forge: ForgeKind, event: string, payload: Json): Intent | { reason: string } {
  const action = str(payload.action) ?? '';
  if (event === 'push') {
    const ref = str(payload.ref) ?? '';
    const sha = str(payload.after) ?? '';
    if (!ref.startsWith('refs/heads/')) return { reason: `push to ${ref || 'an unknown ref'} is not a branch` };
    if (!/^[0-9a-f]{40}$/.test(sha) || ZERO_SHA.test(sha)) return { reason: `push to ${ref} deletes the branch` };
    const head = obj(payload.head_commit);
    const treeHash = str(head.id) === sha ? str(head.tree_id) : undefined;
    return { kind: 'push', ref, sha, ...(treeHash ? { treeHash } : {}) };
  }
  if (event === 'pull_request') {
    if (!PR_ACTIONS[forge].includes(action)) return { reason: `pull_request ${action} needs no build` };
    const pr = obj(payload.pull_request);
    const head = obj(pr.head);
    const base = obj(pr.base);
    const number = num(pr.number) ?? num(payload.number);
    const sha = str(head.sha);
    if (number === undefined || sha === undefined) return { reason: 'pull_request event without a number or head sha' };
    const headRepo = num(obj(head.repo).id) ?? num(head.repo_id);
    const baseRepo = num(obj(base.repo).id) ?? num(base.repo_id);
    const sender = str(obj(payload.sender).login);
    return {
      kind: 'pull_request',
      number,
      sha,
      author: str(obj(pr.user).login) ?? '',
      sameRepository: headRepo !== undefined && headRepo === baseRepo,
      action,
      ...(sender === undefined ? {} : { sender }),
    };
  }
  if (event === 'issue_comment' || event === 'pull_request_comment') {
    const issue = obj(payload.issue);
    const onPullRequest = payload.is_pull === true || (issue.pull_request !== undefined && issue.pull_request !== null);
    const comment = obj(payload.comment);
    if (action !== 'created' || !onPullRequest) return { reason: 'comment is not a new comment on a pull request' };
    if (!CI_RUN_COMMAND.test(str(comment.body) ?? '')) return { reason: 'comment holds no /ci run' };
    const number = num(issue.number);
    const commenter = str(obj(comment.user).login);
    if (number === undefined || commenter === undefined) return { reason: 'comment without an issue number or author' };
    const commentId = num(comment.id);
    const createdAt = str(comment.created_at);
    return { kind: 'comment', number, commenter, ...(commentId === undefined ? {} : { commentId }), ...(createdAt === undefined ? {} : { createdAt }) };
  }
  return { reason: `${event} events are not used` };
}

function payloadRepository(payload: Json): PayloadRepository | undefined {
  const repo = obj(payload.repository);
  const owner = str(obj(repo.owner).login) ?? str(obj(repo.owner).username);
  const name = str(repo.name);
  if (!owner || !name) return undefined;
  const forgeId = num(repo.id);
  const installationId = num(obj(payload.installation).id);
  return { owner, name, ...(forgeId === undefined ? {} : { forgeId }), ...(installationId === undefined ? {} : { installationId }) };
}

/**
 * Whose push a pull_request event's head is: on `synchronize` (Gitea: `synchronized`) the
 * sender's, who pushed it (to a fork others may push to as well); otherwise the author's.
 */
export function headPusher(intent: Extract<Intent, { kind: 'pull_request' }>): string {
  const pushed = intent.action === 'synchronize' || intent.action === 'synchronized';
  return pushed && intent.sender !== undefined ? intent.sender : intent.author;
}
