/** The database health check: `/healthz` runs it, and `harmonia-ci dev` as PostgreSQL comes up. */
import type { Pool } from 'pg';
import { timedCheck, type ComponentHealth } from '../lib/health.ts';
import { assertSchemaCompatible, readSchemaVersion } from './migrate.ts';

/** PostgreSQL answers, and its schema is one this program understands. */
export function checkDatabase(pool: Pool): Promise<ComponentHealth> {
  return timedCheck(true, async () => {
    await pool.query('SELECT 1');
    await assertSchemaCompatible(pool);
    return `schema version ${await readSchemaVersion(pool)}`;
  });
}
