/** Build logs kept in PostgreSQL: the live tail the dashboard and `harmonia-ci logs` read. */
import type { Pool } from 'pg';
import type { BuildLogSink } from './index.ts';

export function createDatabaseLogSink(pool: Pool): BuildLogSink {
  const write = async (drvPath: string, text: string): Promise<void> => {
    await pool.query(
      `INSERT INTO build_log_tails (build_id, tail, updated_at)
       SELECT id, $2, now() FROM build_jobs WHERE drv_path = $1
       ON CONFLICT (build_id) DO UPDATE SET tail = excluded.tail, updated_at = now()`,
      [drvPath, text],
    );
  };
  return {
    tail: write,
    finished: (drvPath, log) => write(drvPath, log.text()),
  };
}
