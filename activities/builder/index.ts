/**
 * The builder's activities. `buildDerivation` runs on the queue of the derivation's system and
 * heartbeats while the build runs, so a builder that dies is noticed and the build workflow
 * tries elsewhere. Cancellation is deliberately not passed to the build: a build that has
 * started runs to the end, because its output is useful in the cache even when nobody waits.
 */
import { readFile } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { parseDerivation } from '../../daemon/core/derivation.ts';
import { parsePrefixedHash, toNarHash } from '../../daemon/core/hash.ts';
import type { Executor } from '../../daemon/executor/executor.ts';
import type { BuildOutcome as ExecutorOutcome } from '../../daemon/executor/types.ts';
import { buildStartedSignal } from '../../workflows/definitions.ts';
import type { Semaphore } from '../../lib/semaphore.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import type { BuilderActivities, BuildOutcome, BuildRequest, PublishOutcome, StagedUpload } from '../types.ts';
import { LogTail } from './log-tail.ts';
import { failedMarkers, readBuildProducts } from './output-files.ts';
import type { Staging } from './staging.ts';
import { buildLogPath, FullLog } from './upload.ts';

/** Where the live log tail and the finished log go. */
export interface BuildLogSink {
  tail(drvPath: string, text: string): Promise<void>;
  finished(drvPath: string, log: LogTail): Promise<void>;
}

export interface BuilderDeps {
  host: string;
  executor: Executor;
  /**
   * Builds this host runs at once. A builder polls one queue per system and feature set, each
   * allowed max-jobs activities, so the host-wide limit is kept here.
   */
  slots?: Semaphore;
  logs: BuildLogSink;
  /** Live tail refresh interval (default 2 s). */
  tailIntervalMs?: number;
  /** Bytes of log the live tail keeps (`limits.log-tail`; default 64 KB). */
  logTailBytes?: number;
  /** Where the full log of each build is kept for the upload (activities/builder/upload.ts); none kept without it. */
  stagingDir?: string;
  /** What is staged in memory, shared with the upload activities; logs go to files without it. */
  staging?: Staging;
  /**
   * Records that this host has started a build, where the builder runs beside the coordinator;
   * otherwise the build workflow is told by signal (and records it).
   */
  recordStart?: (drvPath: string) => Promise<void>;
  /**
   * Stages a successful build's outputs and log (a failed build's log alone) for upload at once, on
   * this host, where they are (activities/builder/upload.ts): the first step of publishing, whoever
   * does the rest.
   */
  stage: (request: { drvPath: string; system: string; outputs: BuiltOutput[] }) => Promise<StagedUpload>;
  /**
   * Set when a signer runs in this process (the single-machine default): the builder runs the
   * publish sequence (workflows/publish-sequence.ts) itself, sparing the build workflow three
   * round trips through task queues.
   */
  publish?: (staged: StagedUpload) => Promise<PublishOutcome>;
}

export function createBuilderActivities(deps: BuilderDeps): BuilderActivities {
  return {
    async buildDerivation({ drvPath, inputPaths, canonicalNarHashes, limits }): Promise<BuildOutcome> {
      const context = Context.current();
      const waiting = setInterval(() => context.heartbeat({ waiting: true }), 2_000);
      const release = await deps.slots?.acquire().finally(() => clearInterval(waiting));
      try {
        return await runBuild(deps, context, { drvPath, inputPaths, canonicalNarHashes, ...(limits ? { limits } : {}) }, () => release?.());
      } finally {
        release?.();
      }
    },
  };
}

/**
 * Builds in the slot it was given and gives the slot back as soon as the build itself is done:
 * the log, staging and publishing that follow need no build slot, so the next build starts.
 */
async function runBuild(
  deps: BuilderDeps,
  context: Context,
  { drvPath, inputPaths, canonicalNarHashes, limits }: BuildRequest,
  releaseSlot: () => void,
): Promise<BuildOutcome> {
  const workflowId = context.info.workflowExecution?.workflowId;
  // Tells the build workflow (and so the dashboard) that this host has the build now. Sent beside
  // the build, but awaited before the activity completes (finally): the records stay in order.
  const announced = deps.recordStart
    ? deps.recordStart(drvPath).catch(() => undefined)
    : workflowId
      ? context.client.workflow.getHandle(workflowId).signal(buildStartedSignal, deps.host).catch(() => undefined)
      : undefined;
  const log = new LogTail(deps.logTailBytes);
  const full = deps.stagingDir ? new FullLog(buildLogPath(deps.stagingDir, drvPath), deps.staging) : undefined;
  let succeeded = false;
  let staged = false;
  let logged: Promise<void> | undefined;
  let flushed = 0;
  const flush = async (): Promise<void> => {
    if (log.lines === flushed) return;
    flushed = log.lines;
    await deps.logs.tail(drvPath, log.text()).catch(() => undefined);
  };
  const timer = setInterval(() => {
    context.heartbeat({ lines: log.lines });
    void flush();
  }, deps.tailIntervalMs ?? 2_000);
  try {
    // The evaluator published the derivation's closure before the build started (activities/evaluator/closure.ts).
    await deps.executor.ensureValid([drvPath]);
    const drv = parseDerivation(await readFile(drvPath, 'utf8'));
    const canonical = new Map(Object.entries(canonicalNarHashes).map(([path, hash]) => [path, parsePrefixedHash(hash)]));
    const result = await deps.executor.build({
      drvPath,
      drv,
      inputPaths,
      canonicalNarHashes: canonical,
      // `meta.timeout` / `meta.maxSilent`: the executor keeps the server's limits as maximums.
      limits: {
        ...(limits?.timeoutSeconds ? { wallClockMs: limits.timeoutSeconds * 1000 } : {}),
        ...(limits?.maxSilentSeconds ? { maxSilenceMs: limits.maxSilentSeconds * 1000 } : {}),
      },
      onLogLine: (line) => {
        log.push(line);
        full?.push(line);
      },
    });
    releaseSlot();
    // The final tail is written beside staging and publishing (on the embedded database every
    // write waits for its one connection), and awaited before the outcome goes back.
    logged = deps.logs.finished(drvPath, log);
    logged.catch(() => undefined);
    const outcome: BuildOutcome = { host: deps.host, ...describeOutcome(result, limits) };
    if (outcome.status === 'succeeded') {
      // Hydra's "failed with output": published like a success, reported as a failure.
      const markers = await failedMarkers(outcome.outputs);
      if (markers.length > 0) {
        outcome.status = 'failed-with-output';
        outcome.error = `the build produced output but marked itself failed (${markers.join(', ')}); its output is kept and served`;
      }
    }
    succeeded = outcome.status === 'succeeded' || outcome.status === 'failed-with-output';
    if (succeeded) {
      const products = await readBuildProducts(outcome.outputs);
      if (products.length > 0) outcome.products = products;
    }
    // The full log goes to the cache whatever the outcome: a failed build's alone, without outputs.
    await full?.close();
    staged = full !== undefined;
    if (succeeded) outcome.staged = await deps.stage({ drvPath, system: drv.platform, outputs: outcome.outputs });
    else if (full) {
      // Never worth building again for: a log that cannot be staged is only missing from the cache.
      const logOnly = await deps.stage({ drvPath, system: drv.platform, outputs: [] }).catch((error: unknown) => {
        context.log.warn(`the log of the failed build ${drvPath} could not be staged: ${(error as Error).message}`);
        staged = false;
        return undefined;
      });
      if (logOnly?.log) outcome.staged = logOnly;
      else staged = false;
    }
    if (deps.publish && outcome.staged) {
      try {
        outcome.published = await deps.publish(outcome.staged);
      } catch (error) {
        // Storage is away, or a target expired too often: the build workflow publishes what is
        // staged here through the task queues, which wait storage out, instead of building again.
        if (!succeeded) context.log.warn(`the log of the failed build ${drvPath} was not published: ${(error as Error).message}`);
        else context.log.warn(`publishing ${drvPath} from the builder failed, the build workflow takes over: ${(error as Error).message}`);
      }
    }
    await logged;
    return outcome;
  } finally {
    clearInterval(timer);
    await logged?.catch(() => undefined);
    await announced;
    if (!staged) await full?.discard();
  }
}

/** The executor's outcome in the words of build states; the limit that ended a build is named. */
function describeOutcome(result: ExecutorOutcome, limits: BuildRequest['limits']): Omit<BuildOutcome, 'host'> {
  // Names the job's own limit when it was the one that applied.
  const fromMeta = (limitMs: number, seconds: number | undefined): boolean => seconds !== undefined && seconds * 1000 === limitMs;
  switch (result.kind) {
    case 'succeeded':
      return {
        status: 'succeeded',
        outputs: result.outputs.map((o) => ({
          name: o.name,
          path: o.path,
          narHash: toNarHash(o.narHash),
          narSize: o.narSize,
          references: o.references,
        })),
      };
    case 'failed':
      return { status: 'failed', error: result.message, outputs: [] };
    case 'timed-out':
      return {
        status: 'timed-out',
        error: `build exceeded its wall-clock limit of ${seconds(result.limitMs)}${fromMeta(result.limitMs, limits?.timeoutSeconds) ? " (the job's meta.timeout)" : ''}`,
        outputs: [],
      };
    case 'silent':
      return {
        status: 'timed-out',
        error: `build printed nothing for ${seconds(result.limitMs)} (max silence${fromMeta(result.limitMs, limits?.maxSilentSeconds) ? ": the job's meta.maxSilent" : ''})`,
        outputs: [],
      };
    case 'output-too-large':
      return {
        status: 'failed',
        error: `outputs total ${result.totalBytes} bytes, over the limit of ${result.limitBytes}`,
        outputs: [],
      };
    case 'cancelled':
      throw new Error('the build was interrupted on this builder');
  }
}

const seconds = (ms: number): string => (ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`);
