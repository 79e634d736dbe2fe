/** Build logs kept in PostgreSQL: the live tail the dashboard and `harmonia-ci logs` read. */
import type { Pool } from 'pg';
import { Batcher } from '../../lib/batcher.ts';
import type { BuildLogSink } from './index.ts';

export function createDatabaseLogSink(pool: Pool): BuildLogSink {
  // Tails of many builds at once go in one statement (one row per build and statement).
  const tails = new Batcher(
    async (entries: Array<{ drvPath: string; text: string }>) => {
      await pool.query(
        `INSERT INTO build_log_tails (build_id, tail, updated_at)
         SELECT b.id, t.tail, now() FROM unnest($1::text[], $2::text[]) AS t(drv_path, tail)
           JOIN build_jobs b ON b.drv_path = t.drv_path
         ON CONFLICT (build_id) DO UPDATE SET tail = excluded.tail, updated_at = now()`,
        [entries.map((e) => e.drvPath), entries.map((e) => e.text)],
      );
      return entries.map(() => undefined);
    },
    { key: (entry) => entry.drvPath },
  );
  const write = (drvPath: string, text: string): Promise<void> => tails.submit({ drvPath, text });
  return {
    tail: write,
    finished: (drvPath, log) => write(drvPath, log.text()),
  };
}
