/** The metric names a scrape of the API can show, and the ones a PromQL expression refers to. */
import { createApiMetrics } from '../../api/plugins/metrics.ts';

/** Every series name the API's registry exports: histograms as their `_bucket`, `_sum` and `_count`. */
export async function apiMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await createApiMetrics().registry.getMetricsAsJSON()) {
    const family = metric.name;
    const suffixes = String(metric.type) === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
    for (const suffix of suffixes) names.add(`${family}${suffix}`);
  }
  return names;
}

/** The harmonia-ci metric names in a PromQL expression. */
export function metricNamesIn(expression: string): string[] {
  return [...new Set(expression.match(/\bharmonia_ci_[a-z0-9_]+/g) ?? [])];
}
