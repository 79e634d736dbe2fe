/**
 * A `/ci run` comment approves the pull request's head as it is when the comment's delivery
 * arrives: the head is read from the forge then and stored with the delivery, so a push after
 * the comment is not built on its strength. A delivery sent again (a replay, under a new
 * delivery id, or late) cannot approve a newer head: each comment counts once, within an hour.
 */
import type { Pool } from 'pg';
import { ForgeNotConfiguredError, ForgeRequestError } from './errors.ts';
import type { ProjectRepository } from './store.ts';
import type { ForgeKind, Forges } from './types.ts';
import type { Intent } from './webhooks.ts';

type CommentIntent = Extract<Intent, { kind: 'comment' }>;

/** A comment's delivery arriving later than this is refused: its head would be a later one. */
export const MAX_COMMENT_AGE_MS = 60 * 60_000;

export type PinnedComment =
  | { kind: 'pinned'; intent: CommentIntent }
  | { kind: 'seen' }
  | { kind: 'stale'; reason: string };

/** The forge could not tell the pull request's head: the delivery is to be retried. */
export class PullRequestHeadUnavailableError extends Error {}

/** The comment with the pull request's current head pinned, or why it starts nothing. */
export async function pinCommentHead(
  pool: Pool,
  forges: Forges,
  forge: ForgeKind,
  project: ProjectRepository,
  intent: CommentIntent,
  deliveryId: string,
  now = Date.now(),
): Promise<PinnedComment> {
  const written = intent.createdAt === undefined ? Number.NaN : Date.parse(intent.createdAt);
  if (Number.isFinite(written) && now - written > MAX_COMMENT_AGE_MS) {
    return { kind: 'stale', reason: `the /ci run comment was written at ${intent.createdAt ?? ''}, over an hour ago (a late or replayed delivery): comment /ci run again` };
  }
  if (intent.commentId !== undefined) {
    const { rows } = await pool.query<{ delivery_id: string; head: CommentIntent['head'] | null }>(
      `SELECT delivery_id, intent->'head' AS head FROM forge_deliveries
        WHERE forge = $1 AND project_id = $2 AND intent->>'kind' = 'comment' AND intent->>'commentId' = $3 LIMIT 1`,
      [forge, project.projectId, String(intent.commentId)],
    );
    const earlier = rows[0];
    // The same delivery again (a redelivery of a parked one) keeps the head it pinned.
    if (earlier && earlier.delivery_id === deliveryId && earlier.head) return { kind: 'pinned', intent: { ...intent, head: earlier.head } };
    if (earlier) return { kind: 'seen' };
  }
  const repo = { owner: project.owner, name: project.name, installationId: project.installationId };
  try {
    const pr = await forges.get(project.forge).pullRequest(repo, intent.number);
    return { kind: 'pinned', intent: { ...intent, head: { sha: pr.sha, author: pr.author, sameRepository: pr.sameRepository } } };
  } catch (error) {
    if (error instanceof ForgeRequestError || error instanceof ForgeNotConfiguredError) {
      throw new PullRequestHeadUnavailableError(
        `cannot read the head of pull request #${intent.number} of ${project.projectName} from ${forge}: ${error.message}; redeliver within the hour or comment /ci run again`,
        { cause: error },
      );
    }
    throw error;
  }
}
