/** The audit log as people read it: the project page, `GET /api/audit` and `harmonia-ci status`. */
import type { Pool } from 'pg';

export interface AuditRecord {
  at: string;
  /** `github:alice`. */
  actor: string;
  /** `session`, or `token:<id>`. */
  via: string;
  action: string;
  target: string;
  project: string | null;
  /** The address the request came from. */
  remote: string;
  outcome: string;
}

/** Recent entries, newest first, optionally of one project. */
export async function listAudit(pool: Pool, options: { project?: string | undefined; limit: number }): Promise<AuditRecord[]> {
  const { rows } = await pool.query<{ at: Date; actor: string; via: string; action: string; target: string; project: string | null; remote: string; outcome: string }>(
    `SELECT at, actor, via, action, target, project, remote, outcome FROM audit_log
      WHERE ($1::text IS NULL OR project = $1) ORDER BY at DESC, id DESC LIMIT $2`,
    [options.project ?? null, options.limit],
  );
  return rows.map((r) => ({ ...r, at: r.at.toISOString() }));
}
