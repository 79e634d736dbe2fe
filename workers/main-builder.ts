/**
 * The builder role (`harmonia-ci worker builder`): polls the build queues of its systems and
 * features, each with at most `maxJobs` builds at a time (the workers'
 * maxConcurrentActivityTaskExecutions), and its own host queue for uploads.
 *
 * Draining (from `harmonia-ci drain`, seen through the node workflow, or on SIGTERM) shuts the
 * build-queue workers down: Temporal's `worker.shutdown()` stops polling at once and waits for
 * the running builds, which finish (the grace time exceeds the build wall clock), and no new
 * build is taken. The host-queue worker keeps serving, so the uploads of those builds still
 * happen here; on SIGTERM it stops only once they are done. `drain --undo` starts fresh
 * build-queue workers once the old ones have stopped.
 */
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { BuilderActivities, HostActivities } from '../activities/types.ts';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../lib/log.ts';
import { builderQueue } from '../workflows/definitions.ts';
import { startNodeAgent } from './node-agent.ts';
import { instrumentBuilder, type WorkerMetrics } from './metrics.ts';
import { createBuildQueueWorkers, createHostWorker, featureSubsets, runWorkers, type BuilderIdentity, type WorkerContext } from './roles.ts';
import { builderActivitiesFor, createDaemonPool, type RunningRole } from './wiring.ts';

/** How long a stopping builder waits for the uploads of the builds it finished. */
const UPLOAD_WAIT_MS = 5 * 60_000;
/** Extra grace beyond the build wall clock before Temporal would cancel a running build. */
const GRACE_MARGIN_MS = 10 * 60_000;

export interface BuilderRoleOptions {
  config: ServerConfig;
  log: Logger;
  client: Client;
  ctx: WorkerContext;
  daemonSocket: string;
  identity: Omit<BuilderIdentity, 'shutdownGraceMs'>;
  version: string;
  heartbeatIntervalMs?: number;
  statusIntervalMs?: number;
  /** Counts builds, staged bytes and uploads (`--metrics-port`). */
  metrics?: WorkerMetrics | undefined;
}

export async function startBuilderRole(options: BuilderRoleOptions): Promise<RunningRole> {
  const { config, log, client, ctx } = options;
  const identity: BuilderIdentity = { ...options.identity, shutdownGraceMs: config.limits.buildTimeout + GRACE_MARGIN_MS };
  const daemon = createDaemonPool(config, options.daemonSocket);
  const node = new BuilderNode(ctx, identity, log);
  const agent = startNodeAgent({
    client,
    log,
    beat: { name: identity.host, systems: identity.systems, features: identity.features, maxJobs: identity.maxJobs, version: options.version },
    onDrainingChange: (draining) => node.setDraining(draining, 'harmonia-ci drain'),
    ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    ...(options.statusIntervalMs === undefined ? {} : { statusIntervalMs: options.statusIntervalMs }),
  });
  try {
    node.activities = node.track(instrumentBuilder(await builderActivitiesFor(config, { host: identity.host, daemon, logs: agent.logSink }), options.metrics));
    await node.startHostWorker();
    node.setDraining(await agent.firstStatus(10_000), 'the node was drained before this start');
    node.begin();
  } catch (error) {
    await agent.stop();
    await daemon.close();
    throw error;
  }
  const stop = async (): Promise<void> => {
    await node.stop();
    await agent.stop();
    await daemon.close();
  };
  return { done: node.failed, stop };
}

/** The builder's workers and the drain state machine. */
class BuilderNode {
  activities: (BuilderActivities & HostActivities) | undefined;
  readonly failed: Promise<never>;
  private fail: (error: unknown) => void = () => undefined;
  /** Undefined until the node's draining flag is first known. */
  private wantBuilds: boolean | undefined;
  private stopping = false;
  private ready = false;
  private serving: ReturnType<typeof runWorkers> | undefined;
  private host: ReturnType<typeof runWorkers> | undefined;
  /** Transitions run one after another, each settling on the latest wish. */
  private transitions: Promise<void> = Promise.resolve();
  private running = 0;
  private readonly awaitingUpload = new Set<string>();

  constructor(
    private readonly ctx: WorkerContext,
    private readonly identity: BuilderIdentity,
    private readonly log: Logger,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    // Observed by whoever awaits `done`; never an unhandled rejection in between.
    this.failed.catch(() => undefined);
  }

  /** Counts running builds and remembers built outputs until this host has uploaded them. */
  track(activities: BuilderActivities & HostActivities): BuilderActivities & HostActivities {
    return {
      ...activities,
      buildDerivation: async (request) => {
        this.running++;
        try {
          const outcome = await activities.buildDerivation(request);
          if (outcome.status === 'succeeded') this.awaitingUpload.add(request.drvPath);
          return outcome;
        } finally {
          this.running--;
        }
      },
      // The workflow calls this last on the host, with nothing to send as well (it clears the staging).
      uploadOutputs: async (request) => {
        await activities.uploadOutputs(request);
        this.awaitingUpload.delete(request.drvPath);
      },
    };
  }

  async startHostWorker(): Promise<void> {
    this.host = this.run([await createHostWorker(this.ctx, this.activities!, this.identity)]);
  }

  /** Acts on the draining flag from now on: the activities and the host worker exist. */
  begin(): void {
    this.ready = true;
    void this.settle();
  }

  setDraining(draining: boolean, why: string): void {
    if (this.wantBuilds === !draining) return;
    this.wantBuilds = !draining;
    if (draining) this.log.info(`draining (${why}): ${this.running} running build(s) finish, no new ones are taken`);
    void this.settle();
  }

  /** Drains, waits for the uploads of finished builds, then stops the host queue. */
  async stop(): Promise<void> {
    if (!this.stopping) this.log.info(`stopping: ${this.running} running build(s) finish first, no new ones are taken`);
    this.stopping = true;
    await this.settle();
    const deadline = Date.now() + UPLOAD_WAIT_MS;
    while (this.awaitingUpload.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    if (this.awaitingUpload.size > 0) {
      this.log.warn(`stopping with ${this.awaitingUpload.size} upload(s) not done; their builds will run again elsewhere`);
    }
    await this.host?.shutdown();
  }

  private settle(): Promise<void> {
    this.transitions = this.transitions.then(() => this.transition()).catch((error: unknown) => this.fail(error));
    return this.transitions;
  }

  private async transition(): Promise<void> {
    if (!this.ready) return;
    const want = this.wantBuilds === true && !this.stopping;
    if (want && !this.serving) {
      this.serving = this.run(await createBuildQueueWorkers(this.ctx, this.activities!, this.identity));
      this.log.info(`taking builds from ${this.queues().join(', ')} (at most ${this.identity.maxJobs} at a time per queue)`);
    } else if (!want && this.serving) {
      const serving = this.serving;
      await serving.shutdown();
      if (this.serving === serving) this.serving = undefined;
      this.log.info('drained: no build running, none will be taken');
    }
  }

  private run(workers: Worker[]): ReturnType<typeof runWorkers> {
    const running = runWorkers(workers);
    running.done.catch((error: unknown) => this.fail(error));
    return running;
  }

  private queues(): string[] {
    const { systems, features } = this.identity;
    return [...new Set(systems.flatMap((system) => featureSubsets(features).map((f) => builderQueue(system, f))))];
  }
}
