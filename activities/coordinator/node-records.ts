/**
 * Coordinator activities for builder nodes. A builder holds no database credentials, so its
 * registration, heartbeats and live log tails reach PostgreSQL through the node workflow
 * (workflows/node.ts), which calls these.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { createDatabaseLogSink } from '../builder/log-sink.ts';
import type { NodeActivities, NodeHeartbeat } from '../types.ts';

/** What the `nodes` table accepts as a name (its CHECK constraint). */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function createNodeActivities({ pool }: { pool: Pool }): NodeActivities {
  const logs = createDatabaseLogSink(pool);
  return {
    async recordNodeHeartbeat(beat: NodeHeartbeat) {
      // A malformed heartbeat cannot get better by retrying: fail it for the run to show.
      if (!NODE_NAME.test(beat.name) || beat.systems.length === 0 || !(beat.maxJobs > 0)) {
        throw ApplicationFailure.nonRetryable(
          `builder heartbeat rejected: name ${JSON.stringify(beat.name)}, systems [${beat.systems.join(', ')}], max jobs ${beat.maxJobs}; ` +
            'start the builder with a valid --host, at least one system and --max-jobs of 1 or more',
          'InvalidNodeHeartbeat',
        );
      }
      const { rows } = await pool.query<{ draining: boolean }>(
        `INSERT INTO nodes (name, systems, features, max_jobs, version, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (name) DO UPDATE
           SET systems = excluded.systems, features = excluded.features, max_jobs = excluded.max_jobs,
               version = excluded.version, last_seen_at = now()
         RETURNING draining`,
        [beat.name, beat.systems, beat.features, beat.maxJobs, beat.version],
      );
      return { draining: rows[0]!.draining };
    },

    async setNodeDraining(name, draining) {
      const { rowCount } = await pool.query('UPDATE nodes SET draining = $2 WHERE name = $1', [name, draining]);
      return (rowCount ?? 0) > 0;
    },

    async recordLogTails(tails) {
      await Promise.all(tails.map(({ drvPath, text }) => logs.tail(drvPath, text)));
    },
  };
}
