/** Commit statuses on the forge, computed from what PostgreSQL says about an eval. */
import type { Pool } from 'pg';

/** Sends a project's commit statuses; local projects have no forge and get none. */
export type ForgeStatusReporter = (evalId: string) => Promise<void>;

export function createForgeStatusReporter({ pool }: { pool: Pool }): ForgeStatusReporter {
  return async (evalId) => {
    const { rows } = await pool.query<{ forge: string }>(
      `SELECT r.forge FROM evaluations e JOIN projects p ON p.id = e.project_id JOIN repositories r ON r.id = p.repository_id
        WHERE e.id = $1`,
      [evalId],
    );
    if (!rows[0] || rows[0].forge === 'local') return;
    throw new Error(`commit statuses for ${rows[0].forge} are not configured in this build of harmonia-ci`);
  };
}
