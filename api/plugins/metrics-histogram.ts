/**
 * Histograms whose observations live in PostgreSQL rows (one row per finished eval or build)
 * rather than in this process: each scrape exports the bucket counts a query computed, so every
 * API process reports the same numbers and a restart loses nothing. prom-client still writes the
 * exposition; only where the counts come from differs.
 */
import type { Pool } from 'pg';
import { Histogram, type MetricObjectWithValues, type MetricType, type MetricValueWithName, type Registry } from 'prom-client';

/** One label set's cumulative bucket counts (by upper bound, `+Inf` last), sum and count. */
export interface HistogramSeries<L extends string> {
  labels: Record<L, string>;
  /** Observations at or below each of the histogram's bounds, in the bounds' order. */
  cumulative: number[];
  sum: number;
  count: number;
}

/**
 * Bucket counts of `source` (SQL selecting a `seconds` column and the label columns) grouped by
 * the labels: one row per label set and smallest bound at or above the value (NULL: above all).
 */
export async function queryHistogram<L extends string>(
  pool: Pool,
  source: string,
  labels: readonly L[],
  bounds: readonly number[],
): Promise<Array<HistogramSeries<L>>> {
  const columns = labels.map((label) => `s.${label}`).join(', ');
  const { rows } = await pool.query<Record<L, string> & { le: number | null; count: number; sum: number }>(
    `SELECT ${columns}, (SELECT min(b) FROM unnest($1::float8[]) b WHERE s.seconds <= b) AS le,
            count(*)::float8 AS count, sum(s.seconds)::float8 AS sum
       FROM (${source}) s
      GROUP BY ${columns}, le`,
    [bounds],
  );
  const series = new Map<string, HistogramSeries<L>>();
  for (const row of rows) {
    const key = JSON.stringify(labels.map((label) => row[label]));
    let entry = series.get(key);
    if (!entry) {
      const values = Object.fromEntries(labels.map((label) => [label, String(row[label])])) as Record<L, string>;
      entry = { labels: values, cumulative: bounds.map(() => 0), sum: 0, count: 0 };
      series.set(key, entry);
    }
    entry.count += row.count;
    entry.sum += row.sum;
    bounds.forEach((bound, index) => {
      if (row.le !== null && row.le <= bound) entry.cumulative[index]! += row.count;
    });
  }
  return [...series.values()];
}

/** prom-client's typings declare `MetricType` a numeric enum; its registry writes the string a metric holds. */
const HISTOGRAM_TYPE = 'histogram' as unknown as MetricType;

/**
 * A histogram exported from the series last given to `set`. It extends prom-client's Histogram so
 * the registry formats it like any other; `le` is the bucket label prom-client's own adds.
 */
export class StoredHistogram<L extends string> extends Histogram<L> {
  private series: Array<HistogramSeries<L>> = [];
  private readonly metricName: string;
  private readonly metricHelp: string;
  private readonly bounds: readonly number[];

  constructor(options: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[]; registry: Registry }) {
    super({ name: options.name, help: options.help, labelNames: options.labelNames, buckets: [...options.buckets], registers: [options.registry] });
    this.metricName = options.name;
    this.metricHelp = options.help;
    this.bounds = options.buckets;
  }

  /** Replaces what the next scrape exports. */
  set(series: Array<HistogramSeries<L>>): void {
    this.series = series;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<L>>> {
    const name = this.metricName;
    const values: Array<MetricValueWithName<L>> = [];
    const value = (suffix: string, labels: Record<string, string | number>, count: number) =>
      values.push({ metricName: `${name}${suffix}`, labels: labels as MetricValueWithName<L>['labels'], value: count });
    for (const { labels, cumulative, sum, count } of this.series) {
      this.bounds.forEach((bound, index) => value('_bucket', { ...labels, le: bound }, cumulative[index]!));
      value('_bucket', { ...labels, le: '+Inf' }, count);
      value('_sum', labels, sum);
      value('_count', labels, count);
    }
    return { name, help: this.metricHelp, type: HISTOGRAM_TYPE, aggregator: 'sum', collect: () => undefined, values };
  }

  /** What the registry formats: the same values (prom-client's own Histogram adds shared labels here). */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<L>>> {
    return this.get();
  }
}
