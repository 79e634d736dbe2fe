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

export interface AuditRecord extends Required<AuditEntry> {
  at: string;
  remote: string;
}

/** Recent entries, newest first, optionally of one project. */
export async function listAudit(pool: Pool, options: { project?: string; limit: number }): Promise<AuditRecord[]> {
  const { rows } = await pool.query<{ at: Date; actor: string; via: string; action: string; target: string; project: string | null; remote: string; outcome: string }>(
    `SELECT at, actor, via, action, target, project, remote, outcome FROM audit_log
      WHERE ($1::text IS NULL OR project = $1) ORDER BY at DESC, id DESC LIMIT $2`,
    [options.project ?? null, options.limit],
  );
  return rows.map((r) => ({ ...r, at: r.at.toISOString() }));
}
