/**
 * The API's Prometheus registry: gauges and histograms refreshed from PostgreSQL (every API
 * process reports the same fleet), and the counters of what this process served from the binary
 * cache. `refresh` runs the queries at most once per `maxAgeMs`, however many scrapers ask.
 */
import type { Pool } from 'pg';
import { Counter, Gauge, Registry } from 'prom-client';
import { StoredHistogram } from './metrics-histogram.ts';
import { BUILD_BUCKETS, EVAL_BUCKETS, readFleetSnapshot, SEEN_WITHIN_SECONDS, type FleetSnapshot } from './metrics-queries.ts';

export const METRIC_PREFIX = 'harmonia_ci_';

/** What the cache routes count: a lookup found (bytes served) or not (undefined), and requests that failed. */
export interface CacheMetrics {
  request(kind: 'narinfo' | 'nar', servedBytes: number | undefined): void;
  error(): void;
}

export interface ApiMetrics {
  registry: Registry;
  cache: CacheMetrics;
  /** Reads PostgreSQL again unless the last read is younger than `maxAgeMs`. */
  refresh(pool: Pool): Promise<void>;
}

/** How long one read of PostgreSQL serves scrapes: a few seconds, below any sane scrape interval. */
export const DEFAULT_MAX_AGE_MS = 5_000;

/** Creates the registry with every metric the API exports. */
export function createApiMetrics({ maxAgeMs = DEFAULT_MAX_AGE_MS }: { maxAgeMs?: number } = {}): ApiMetrics {
  const registry = new Registry();
  const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;
  const gauge = <L extends string>(suffix: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: name(suffix), help, labelNames, registers: [registry] });

  const cacheRequests = new Counter({
    name: name('cache_requests_total'),
    help: 'Binary cache requests served by this process, by kind (narinfo, nar) and result (hit, miss).',
    labelNames: ['kind', 'result'] as const,
    registers: [registry],
  });
  const cacheBytes = new Counter({
    name: name('cache_served_bytes_total'),
    help: 'Bytes of narinfos and NARs this process answered with.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const cacheErrors = new Counter({
    name: name('cache_errors_total'),
    help: 'Binary cache requests this process failed (the storage could not be read).',
    registers: [registry],
  });
  for (const kind of ['narinfo', 'nar']) {
    for (const result of ['hit', 'miss']) cacheRequests.inc({ kind, result }, 0);
    cacheBytes.inc({ kind }, 0);
  }

  const g = {
    evalsQueued: gauge('evals_queued', 'Evaluations waiting to start.'),
    evalsRunning: gauge('evals_running', 'Evaluations running.'),
    evalOldest: gauge('eval_oldest_running_seconds', 'How long the longest-running evaluation has been running.'),
    builds: gauge('builds', 'Build records by state (queued, running, succeeded, failed, dep-failed, timed-out, cancelled) and system.', ['state', 'system'] as const),
    queueDepth: gauge('build_queue_depth', 'Builds waiting for a builder, per builder task queue.', ['queue', 'system'] as const),
    queueOldest: gauge('build_queue_oldest_seconds', 'How long the oldest build waiting in a builder queue has been ready.', ['queue', 'system'] as const),
    retries: gauge('project_build_retries', 'Build attempts retried after an infrastructure fault, per project (builds in its evals).', ['project'] as const),
    failures: gauge('project_build_failures', 'Builds that failed or timed out, per project (builds in its evals).', ['project'] as const),
    shares: gauge('project_scheduling_shares', 'Scheduling shares of each project.', ['project'] as const),
    usage: gauge('project_builder_seconds', 'Builder seconds a project used, decayed by 0.95 per hour.', ['project'] as const),
    running: gauge('builder_running_builds', 'Builds building or uploading on each builder.', ['builder'] as const),
    maxJobs: gauge('builder_max_jobs', 'Builds each builder runs at once.', ['builder'] as const),
    utilisation: gauge('builder_utilisation', 'Running builds over max jobs, per builder.', ['builder'] as const),
    lastSeen: gauge('builder_last_seen_seconds', 'Seconds since each registered builder last reported in.', ['builder'] as const),
    draining: gauge('builder_draining', '1 when the builder is draining.', ['builder'] as const),
    builders: gauge('builders', 'Builders that reported in during the last minute, and how many of them drain.', ['state'] as const),
    available: gauge('builders_available', 'Builders present and not draining per system (0 for a system builds wait for but no builder serves).', ['system'] as const),
    deliveries: gauge('webhook_deliveries', 'Stored webhook deliveries by forge and state (pending, dispatched, ignored, parked).', ['forge', 'state'] as const),
    deliveryOldest: gauge('webhook_delivery_oldest_seconds', 'Age of the oldest stored delivery by forge and state.', ['forge', 'state'] as const),
    statusesPending: gauge('commit_statuses_pending', 'Commit statuses last reported to a forge as pending.'),
    published: gauge('outputs_published', 'Build outputs the signer registered in the cache (canonical NAR hash recorded).'),
  };
  const h = {
    evalDuration: new StoredHistogram({ name: name('eval_duration_seconds'), help: 'Duration of finished evaluations, by project and outcome.', labelNames: ['project', 'outcome'] as const, buckets: EVAL_BUCKETS, registry }),
    buildDuration: new StoredHistogram({ name: name('build_duration_seconds'), help: 'Duration of finished builds from start on a builder to their result, by system.', labelNames: ['system'] as const, buckets: BUILD_BUCKETS, registry }),
    buildWait: new StoredHistogram({ name: name('build_wait_seconds'), help: 'Time from a build being ready (its inputs built, its workflow started) to a builder starting it, by system.', labelNames: ['system'] as const, buckets: BUILD_BUCKETS, registry }),
  };

  const apply = (s: FleetSnapshot): void => {
    for (const metric of Object.values(g)) metric.reset();
    g.evalsQueued.set(s.evals.queued);
    g.evalsRunning.set(s.evals.running);
    g.evalOldest.set(s.evals.oldestRunningSeconds);
    for (const row of s.builds) g.builds.set({ state: row.state, system: row.system }, row.count);
    for (const q of s.queues) {
      g.queueDepth.set({ queue: q.queue, system: q.system }, q.waiting);
      g.queueOldest.set({ queue: q.queue, system: q.system }, q.oldestSeconds);
    }
    for (const p of s.projects) {
      g.retries.set({ project: p.project }, p.retries);
      g.failures.set({ project: p.project }, p.failures);
      g.shares.set({ project: p.project }, p.shares);
      g.usage.set({ project: p.project }, p.builderSeconds);
    }
    let seen = 0;
    let draining = 0;
    for (const b of s.builders) {
      const labels = { builder: b.builder };
      g.running.set(labels, b.running);
      g.maxJobs.set(labels, b.maxJobs);
      g.utilisation.set(labels, b.running / b.maxJobs);
      g.lastSeen.set(labels, b.secondsSinceSeen);
      g.draining.set(labels, b.draining ? 1 : 0);
      if (b.secondsSinceSeen <= SEEN_WITHIN_SECONDS) {
        seen++;
        if (b.draining) draining++;
      }
    }
    g.builders.set({ state: 'seen' }, seen);
    g.builders.set({ state: 'draining' }, draining);
    for (const a of s.availableBySystem) g.available.set({ system: a.system }, a.count);
    for (const d of s.deliveries) {
      g.deliveries.set({ forge: d.forge, state: d.state }, d.count);
      g.deliveryOldest.set({ forge: d.forge, state: d.state }, d.oldestSeconds);
    }
    g.statusesPending.set(s.statusesPending);
    g.published.set(s.outputsPublished);
    h.evalDuration.set(s.evalDurations);
    h.buildDuration.set(s.buildDurations);
    h.buildWait.set(s.buildWaits);
  };

  let readAt = -Infinity;
  let reading: Promise<void> | undefined;
  return {
    registry,
    cache: {
      request(kind, servedBytes) {
        cacheRequests.inc({ kind, result: servedBytes === undefined ? 'miss' : 'hit' });
        if (servedBytes !== undefined) cacheBytes.inc({ kind }, servedBytes);
      },
      error() {
        cacheErrors.inc();
      },
    },
    refresh(pool) {
      if (performance.now() - readAt < maxAgeMs) return Promise.resolve();
      // One read at a time: scrapes that arrive meanwhile wait for it instead of starting their own.
      reading ??= readFleetSnapshot(pool)
        .then((snapshot) => {
          apply(snapshot);
          readAt = performance.now();
        })
        .finally(() => {
          reading = undefined;
        });
      return reading;
    },
  };
}
