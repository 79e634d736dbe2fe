/**
 * Metrics of a worker process (`harmonia-ci worker <role> --metrics-port`): what its role did
 * (builds and staged bytes on builders, evaluation time and jobs on evaluators, signatures and
 * rejections on signers), counted around the role's activities, plus the Temporal SDK's own
 * metrics. The SDK's Prometheus exporter belongs to its Runtime, which a process installs once;
 * it listens on a loopback port of its own, and this process's `/metrics` appends what it
 * reports, so one scrape target per process shows both.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry } from 'prom-client';
import type { BuilderActivities, EvaluatorActivities, HostActivities, SignerActivities } from '../activities/types.ts';

export interface WorkerMetrics {
  registry: Registry;
  builds: Counter<'status'>;
  buildSeconds: Histogram<'status'>;
  stagedBytes: Counter;
  uploads: Counter;
  evaluations: Counter<'outcome'>;
  evaluationSeconds: Histogram<'outcome'>;
  jobs: Counter;
  signatures: Counter<'kind'>;
  rejections: Counter<'activity' | 'reason'>;
}

/** Build and evaluation durations: a second to a day. */
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

/** One registry per process: every role the process runs counts into it. */
export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    builds: new Counter({ name: 'harmonia_ci_builder_builds_total', help: 'Builds this builder ran, by status (succeeded, failed, timed-out, error: the activity failed).', labelNames: ['status'], registers }),
    buildSeconds: new Histogram({ name: 'harmonia_ci_builder_build_seconds', help: 'Time this builder spent on each build, by status.', labelNames: ['status'], buckets: DURATION_BUCKETS, registers }),
    stagedBytes: new Counter({ name: 'harmonia_ci_builder_staged_bytes_total', help: 'Compressed NAR and log bytes this builder staged for upload after successful builds.', registers }),
    uploads: new Counter({ name: 'harmonia_ci_builder_uploads_total', help: 'Objects this host uploaded to the cache through upload targets.', registers }),
    evaluations: new Counter({ name: 'harmonia_ci_evaluator_evaluations_total', help: 'Evaluations this evaluator ran, by outcome (ok, failed, error: the activity failed).', labelNames: ['outcome'], registers }),
    evaluationSeconds: new Histogram({ name: 'harmonia_ci_evaluator_evaluation_seconds', help: 'Time each evaluation took on this evaluator, by outcome.', labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers }),
    jobs: new Counter({ name: 'harmonia_ci_evaluator_jobs_total', help: 'Jobs the evaluations of this evaluator produced.', registers }),
    signatures: new Counter({ name: 'harmonia_ci_signer_signatures_total', help: 'Paths this signer signed into the cache, by kind (outputs, closure).', labelNames: ['kind'], registers }),
    rejections: new Counter({ name: 'harmonia_ci_signer_rejections_total', help: 'Signer requests that failed, by activity and failure type.', labelNames: ['activity', 'reason'], registers }),
  };
}

/** The failure type a Temporal ApplicationFailure carries, else the error's class name. */
function failureType(error: unknown): string {
  const type = (error as { type?: unknown }).type;
  return typeof type === 'string' && type ? type : (error as Error)?.name || 'Error';
}

/** The builder's activities, counting builds, their time, staged bytes and uploads. */
export function instrumentBuilder<A extends BuilderActivities & HostActivities>(activities: A, metrics: WorkerMetrics | undefined): A {
  if (!metrics) return activities;
  return {
    ...activities,
    async buildDerivation(request) {
      const stop = metrics.buildSeconds.startTimer();
      try {
        const outcome = await activities.buildDerivation(request);
        metrics.builds.inc({ status: outcome.status });
        stop({ status: outcome.status });
        const staged = outcome.staged;
        if (staged) metrics.stagedBytes.inc(staged.outputs.reduce((sum, output) => sum + output.file.size, staged.log?.size ?? 0));
        return outcome;
      } catch (error) {
        metrics.builds.inc({ status: 'error' });
        stop({ status: 'error' });
        throw error;
      }
    },
    async uploadOutputs(request) {
      await activities.uploadOutputs(request);
      metrics.uploads.inc(request.plan.uploads.length);
    },
  };
}

/** The evaluator's activities, counting evaluations, their time and the jobs they produced. */
export function instrumentEvaluator(activities: EvaluatorActivities, metrics: WorkerMetrics | undefined): EvaluatorActivities {
  if (!metrics) return activities;
  return {
    ...activities,
    async evaluate(request) {
      const stop = metrics.evaluationSeconds.startTimer();
      try {
        const outcome = await activities.evaluate(request);
        const result = outcome.ok ? 'ok' : 'failed';
        metrics.evaluations.inc({ outcome: result });
        stop({ outcome: result });
        metrics.jobs.inc(outcome.jobs);
        return outcome;
      } catch (error) {
        metrics.evaluations.inc({ outcome: 'error' });
        stop({ outcome: 'error' });
        throw error;
      }
    },
  };
}

/** The signer's activities, counting the paths it signed and the requests it refused or failed. */
export function instrumentSigner(activities: SignerActivities, metrics: WorkerMetrics | undefined): SignerActivities {
  if (!metrics) return activities;
  const refused = (activity: string) => (error: unknown) => {
    metrics.rejections.inc({ activity, reason: failureType(error) });
    throw error;
  };
  return {
    ...activities,
    prepareUpload: (staged) => activities.prepareUpload(staged).catch(refused('prepareUpload')),
    async publish(staged) {
      const outcome = await activities.publish(staged).catch(refused('publish'));
      metrics.signatures.inc({ kind: staged.kind ?? 'outputs' }, outcome.outputs.length);
      return outcome;
    },
  };
}

/**
 * Serves `GET /metrics` on `host:port`: this registry, then what the Temporal SDK's exporter at
 * `temporalUrl` reports (left out, with a comment line, when it does not answer).
 */
export async function serveWorkerMetrics(options: { host: string; port: number; metrics: WorkerMetrics; temporalUrl?: string | undefined }): Promise<{ url: string; close(): Promise<void> }> {
  const { registry } = options.metrics;
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics is served here\n');
      return;
    }
    void (async () => {
      let body = await registry.metrics();
      if (options.temporalUrl) {
        body += await fetch(options.temporalUrl, { signal: AbortSignal.timeout(5_000) })
          .then(async (reply) => (reply.ok ? reply.text() : `# the Temporal SDK's exporter answered ${reply.status}\n`))
          .catch((error: Error) => `# the Temporal SDK's exporter did not answer: ${error.message.replace(/\n/g, ' ')}\n`);
      }
      response.writeHead(200, { 'content-type': registry.contentType }).end(body);
    })().catch((error: Error) => {
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${error.message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: Error) => reject(new Error(`metrics cannot listen on ${options.host}:${options.port}: ${error.message}; choose another --metrics-port`)));
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
