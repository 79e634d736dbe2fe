/** Where an eval's time went, from the timestamps the pipeline records in PostgreSQL. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { buildWorkflowId } from '../../workflows/definitions.ts';
import { percentile } from './latency.ts';

const ms = (value: string | number | null | undefined): string => `${Number(value ?? Number.NaN).toFixed(0)} ms`;

/** `evaluation …, evaluation done → first build started …; per build (mean): created → started …, started → built and published …`. */
export async function describePhases(pool: Pool, evalId: string): Promise<string> {
  const { rows } = await pool.query<Record<string, string | null>>(
    `SELECT extract(epoch FROM v.finished_at - v.started_at) * 1000 AS evaluation_ms,
            extract(epoch FROM v.started_at - v.created_at) * 1000 AS queued_eval_ms,
            extract(epoch FROM min(b.started_at) - v.finished_at) * 1000 AS first_ms,
            avg(extract(epoch FROM b.started_at - b.created_at) * 1000) AS queued_ms,
            avg(extract(epoch FROM b.finished_at - b.started_at) * 1000) AS building_ms,
            count(b.id) FILTER (WHERE b.started_at IS NOT NULL) AS built
       FROM evaluations v
       LEFT JOIN evaluation_builds e ON e.eval_id = v.id
       LEFT JOIN build_jobs b ON b.id = e.build_id
      WHERE v.id = $1
      GROUP BY v.id`,
    [evalId],
  );
  const row = rows[0] ?? {};
  const parts = [`eval created → evaluating ${ms(row.queued_eval_ms)}`, `evaluation ${ms(row.evaluation_ms)}`];
  if (Number(row.built ?? 0) > 0) {
    parts.push(`evaluation done → first build started ${ms(row.first_ms)}`);
    parts.push(`per build (mean): created → started ${ms(row.queued_ms)}, started → built and published ${ms(row.building_ms)}`);
  }
  return parts.join('; ');
}

/**
 * Medians of each step of a link in a chain: dependency finished → dependent's workflow started
 * (the eval's pass), → a builder took it (build workflow's first task and the activity's dispatch),
 * → built and published (the builder, the signer, the result recorded).
 */
export async function describeChainSteps(pool: Pool, evalId: string): Promise<string> {
  const { rows } = await pool.query<Record<string, string | null>>(
    `WITH link AS (
       SELECT extract(epoch FROM e.subscribed_at - max(ib.finished_at)) * 1000 AS dispatch,
              extract(epoch FROM b.started_at - e.subscribed_at) * 1000 AS pickup,
              extract(epoch FROM b.finished_at - b.started_at) * 1000 AS build
         FROM evaluation_builds e
         JOIN build_jobs b ON b.id = e.build_id
         JOIN derivation_inputs di ON di.drv_path = b.drv_path
         JOIN build_jobs ib ON ib.drv_path = di.input_drv_path
        WHERE e.eval_id = $1
        GROUP BY b.id, b.started_at, b.finished_at, e.subscribed_at
     )
     SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY dispatch) AS dispatch,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY pickup) AS pickup,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY build) AS build
       FROM link`,
    [evalId],
  );
  const row = rows[0] ?? {};
  return `per link (p50): dependency finished → dependent's workflow started ${ms(row.dispatch)}, → taken by a builder ${ms(row.pickup)}, → built, published and recorded ${ms(row.build)}`;
}

/** Milliseconds of an event's time, from a history event's `eventTime`. */
function eventMs(event: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number {
  const time = event.eventTime;
  return Number(time?.seconds ?? 0) * 1000 + (time?.nanos ?? 0) / 1e6;
}

/**
 * Medians, from the build workflows' Temporal histories, of where one link of a chain goes: the
 * dependency's builder finished (activity completed) → its workflow's next task started → the
 * dependent's workflow started → its builder activity scheduled (first task: beginBuild) → a
 * builder took it → the builder finished (build, staging, publishing) → the dependency's
 * workflow closed. Event times are the server's; all on one machine.
 */
export async function describeChainTimeline(client: Client, pool: Pool, evalId: string): Promise<string> {
  const { rows } = await pool.query<{ drv_path: string; input: string | null }>(
    `SELECT b.drv_path, min(di.input_drv_path) AS input
       FROM evaluation_builds e
       JOIN build_jobs b ON b.id = e.build_id
       LEFT JOIN derivation_inputs di ON di.drv_path = b.drv_path
      WHERE e.eval_id = $1
      GROUP BY b.drv_path`,
    [evalId],
  );
  const times = new Map<string, { started: number; scheduled: number; taken: number; built: number; resumed: number; closed: number }>();
  for (const { drv_path } of rows) {
    const history = await client.workflow.getHandle(buildWorkflowId(drv_path)).fetchHistory();
    const events = history.events ?? [];
    const find = (predicate: (event: (typeof events)[number]) => unknown, from = 0): number =>
      events.findIndex((event, i) => i >= from && predicate(event));
    const scheduledAt = find((event) => event.activityTaskScheduledEventAttributes);
    const takenAt = find((event) => event.activityTaskStartedEventAttributes);
    const builtAt = find((event) => event.activityTaskCompletedEventAttributes);
    const resumedAt = find((event) => event.workflowTaskStartedEventAttributes, builtAt);
    if (scheduledAt < 0 || takenAt < 0 || builtAt < 0 || resumedAt < 0) continue;
    times.set(drv_path, {
      started: eventMs(events[0]!),
      scheduled: eventMs(events[scheduledAt]!),
      taken: eventMs(events[takenAt]!),
      built: eventMs(events[builtAt]!),
      resumed: eventMs(events[resumedAt]!),
      closed: eventMs(events.at(-1)!),
    });
  }
  const steps = { resumed: [] as number[], dependent: [] as number[], scheduled: [] as number[], taken: [] as number[], built: [] as number[], closed: [] as number[] };
  for (const { drv_path, input } of rows) {
    const own = times.get(drv_path);
    const dependency = input ? times.get(input) : undefined;
    if (!own || !dependency) continue;
    steps.resumed.push(dependency.resumed - dependency.built);
    steps.dependent.push(own.started - dependency.built);
    steps.scheduled.push(own.scheduled - own.started);
    steps.taken.push(own.taken - own.scheduled);
    steps.built.push(own.built - own.taken);
    steps.closed.push(dependency.closed - dependency.built);
  }
  const median = (values: number[]): string => (values.length === 0 ? 'n/a' : ms(percentile([...values].sort((a, b) => a - b), 50)));
  return (
    `per link from histories (p50): builder done → its workflow's task ${median(steps.resumed)}, → dependent's workflow started ${median(steps.dependent)} ` +
    `(dependency's workflow closed at ${median(steps.closed)}); dependent started → builder activity scheduled ${median(steps.scheduled)}, ` +
    `→ taken by a builder ${median(steps.taken)}, → built, staged and published ${median(steps.built)}`
  );
}
