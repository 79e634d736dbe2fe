/** Webhook deliveries the dispatcher parked: what an operator reads to find a push that never became an eval. */
import type { Pool } from 'pg';
import { iso } from './time.ts';

export interface ParkedDelivery {
  id: string;
  forge: string;
  /** The forge's id of the delivery (`X-GitHub-Delivery`): redelivering it from the forge retries it. */
  deliveryId: string;
  event: string;
  project: string;
  ref: string;
  failures: number;
  /** The last failure's message. */
  error: string | null;
  receivedAt: string;
  parkedAt: string;
}

/** Parked deliveries, newest first, optionally of one project. */
export async function listParkedDeliveries(
  pool: Pool,
  options: { project?: string | undefined; limit?: number; hidden?: readonly string[] | undefined } = {},
): Promise<ParkedDelivery[]> {
  const { rows } = await pool.query<{
    id: number;
    forge: string;
    delivery_id: string;
    event: string;
    project: string;
    ref: string;
    failures: number;
    outcome: string | null;
    created_at: Date;
    finished_at: Date;
  }>(
    `SELECT d.id, d.forge, d.delivery_id, d.event, p.name AS project, d.ref, d.failures, d.outcome, d.created_at, d.finished_at
       FROM forge_deliveries d JOIN projects p ON p.id = d.project_id
      WHERE d.status = 'parked' AND ($1::text IS NULL OR p.name = $1) AND NOT (p.name = ANY($3::text[]))
      ORDER BY d.finished_at DESC, d.id DESC LIMIT $2`,
    [options.project ?? null, options.limit ?? 50, options.hidden ?? []],
  );
  return rows.map((row) => ({
    id: String(row.id),
    forge: row.forge,
    deliveryId: row.delivery_id,
    event: row.event,
    project: row.project,
    ref: row.ref,
    failures: row.failures,
    error: row.outcome,
    receivedAt: iso(row.created_at) ?? '',
    parkedAt: iso(row.finished_at) ?? '',
  }));
}

/** How many deliveries are parked; undefined when the table predates parking (database not migrated). */
export async function countParkedDeliveries(pool: Pool): Promise<number | undefined> {
  const { rows } = await pool.query<{ present: boolean }>(`SELECT to_regclass('forge_deliveries') IS NOT NULL AS present`);
  if (!rows[0]?.present) return undefined;
  const counted = await pool.query<{ parked: number }>(`SELECT count(*)::int AS parked FROM forge_deliveries WHERE status = 'parked'`);
  return counted.rows[0]?.parked ?? 0;
}
