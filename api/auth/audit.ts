/** The audit log: every action taken over HTTP, with who took it, how, on what, and from where. */
import type { FastifyRequest } from 'fastify';
import type { Pool } from 'pg';

export interface AuditEntry {
  actor: string;
  via: string;
  action: string;
  target: string;
  project?: string | null;
  outcome: string;
}

/** Appends an entry; the remote address is the request's (behind a proxy, as Fastify's trustProxy sees it). */
export async function writeAudit(pool: Pool, request: FastifyRequest, entry: AuditEntry): Promise<void> {
  await pool.query('INSERT INTO audit_log (actor, via, action, target, project, remote, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
    entry.actor,
    entry.via,
    entry.action,
    entry.target,
    entry.project ?? null,
    request.ip,
    entry.outcome,
  ]);
}
