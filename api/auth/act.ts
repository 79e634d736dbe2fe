/**
 * What every action route does once it has acted: write the audit entry (who, how, what, on what,
 * from where), then answer a script with JSON and a dashboard form with a redirect back to its
 * page (303), where the change shows in place. One place, so no route forgets the audit.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { writeAudit } from './audit.ts';
import { principalName, type Principal } from './principal.ts';

export interface ActionRecord {
  /** `eval.cancel`, `project.settings`, …: what the audit log calls it. */
  action: string;
  target: string;
  project?: string | null;
  /** What happened, for the caller and the audit log's outcome. */
  message: string;
  /** Where a form post is sent back to. */
  page: string;
}

/** Whether the request is a dashboard form post (answered with a redirect) rather than a script's. */
export function isFormPost(request: FastifyRequest): boolean {
  return String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

/** Audits the action, then answers `{ message }` or a redirect to the page for a form. */
export async function finishAction(request: FastifyRequest, reply: FastifyReply, principal: Principal, record: ActionRecord): Promise<FastifyReply | { message: string }> {
  await writeAudit(request.server.db, request, {
    actor: principalName(principal),
    via: principal.via,
    action: record.action,
    target: record.target,
    project: record.project ?? null,
    outcome: record.message,
  });
  if (isFormPost(request)) return reply.redirect(record.page, 303);
  return { message: record.message };
}
