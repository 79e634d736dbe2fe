/** The metric names a scrape of the API or a worker can show, and the ones a PromQL expression refers to. */
import { createApiMetrics } from '../../api/plugins/metrics.ts';
import { createWorkerMetrics } from '../../workers/metrics.ts';

/** Every series name the API's and the workers' registries export: histograms as their `_bucket`, `_sum` and `_count`. */
export async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const metrics = [...(await createApiMetrics().registry.getMetricsAsJSON()), ...(await createWorkerMetrics().registry.getMetricsAsJSON())];
  for (const metric of metrics) {
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
