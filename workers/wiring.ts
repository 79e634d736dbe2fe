/**
 * From configuration to activities, once for every way of running them: the fleet's worker
 * processes (`harmonia-ci worker <role>`, workers/main-*.ts) and the in-process workers of `dev`
 * and `run` (cli/local-workers.ts).
 */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { createBuilderActivities, type BuildLogSink } from '../activities/builder/index.ts';
import { Semaphore } from '../lib/semaphore.ts';
import { Staging } from '../activities/builder/staging.ts';
import { createUploadActivities, prepareStaging } from '../activities/builder/upload.ts';
import { createCoordinatorActivities } from '../activities/coordinator/index.ts';
import { createDeployActivities } from '../activities/deploy/index.ts';
import type { DeployActivities } from '../activities/deploy/types.ts';
import { createNotifyActivities } from '../activities/notify/index.ts';
import type { NotifyActivities } from '../activities/notify/types.ts';
import type { ClosureDeps } from '../activities/evaluator/closure.ts';
import { createEvaluatorActivities } from '../activities/evaluator/index.ts';
import { builderCacheFor, trustedKeysFor, type Signer } from '../activities/signer/setup.ts';
import type { BuilderActivities, CoordinatorActivities, EvaluatorActivities, HostActivities, PublishOutcome, SignerActivities, StagedUpload } from '../activities/types.ts';
import type { ServerConfig } from '../config/types.ts';
import { createExecutor } from '../daemon/executor/executor.ts';
import { DaemonPool } from '../daemon/protocol/pool.ts';
import { createForges } from '../forges/index.ts';
import type { Logger } from '../lib/log.ts';
import { UPLOAD_EXPIRED } from '../workflows/definitions.ts';
import { ourCacheLookupFor, planningLookupFor, upstreamCachesFor } from './caches.ts';
import { publishStaged } from '../workflows/publish-sequence.ts';

/** A role's workers running in this process. */
export interface RunningRole {
  /** Rejects when a worker fails; never resolves on its own. */
  done: Promise<never>;
  /** Stops gracefully: running activities finish first. */
  stop(): Promise<void>;
}

/** Connections to the local nix-daemon: one per build slot, plus room for queries. */
export function createDaemonPool(config: ServerConfig, socketPath: string): DaemonPool {
  return new DaemonPool({ socketPath, maxConnections: config.builder.maxJobs + 2 });
}

export function coordinatorActivitiesFor(
  config: ServerConfig,
  deps: { pool: Pool; client: Client; log: Logger; builderHeartbeatTimeoutMs?: number | undefined },
): CoordinatorActivities & DeployActivities & NotifyActivities {
  const forges = createForges(config.forges);
  const coordinator = createCoordinatorActivities({
    pool: deps.pool,
    client: deps.client,
    defaults: { attrs: [], allowIfd: config.projects.allowIfd, evalTimeoutMs: config.limits.evalTimeout, systems: config.builder.systems, statuses: config.projects.statuses },
    builderHeartbeatTimeoutMs: deps.builderHeartbeatTimeoutMs ?? config.limits.builderHeartbeatTimeout,
    buildAttempts: config.limits.attempts,
    publishDeadlineMs: config.limits.publishDeadline,
    forges,
    publicUrl: config.api.publicUrl,
    log: deps.log,
  });
  const deploy = createDeployActivities({
    pool: deps.pool,
    client: deps.client,
    targets: config.deployments,
    defaultCacheUrl: config.builder.substituters[0] ?? config.api.publicUrl,
    ...(config.cache.publicKeys[0] ? { defaultPublicKey: config.cache.publicKeys[0] } : {}),
    forges,
    ...(config.api.publicUrl ? { publicUrl: config.api.publicUrl } : {}),
    log: deps.log,
  });
  const notify = createNotifyActivities({
    pool: deps.pool,
    client: deps.client,
    hooks: config.notifications,
    ...(config.api.publicUrl ? { publicUrl: config.api.publicUrl } : {}),
    log: deps.log,
  });
  return { ...coordinator, ...deploy, ...notify };
}

/** Planning counts an output as there when the local store, our cache or an upstream cache has it. */
export function evaluatorActivitiesFor(
  config: ServerConfig,
  deps: { pool: Pool; daemon: DaemonPool; log: Logger; signer?: Signer | undefined; closure?: ClosureDeps },
): EvaluatorActivities {
  const lookup = planningLookupFor(config, { daemon: deps.daemon, signer: deps.signer, warn: (message) => deps.log.warn(message) });
  return createEvaluatorActivities({
    pool: deps.pool,
    isValid: (paths) => lookup.available(paths),
    restrictedMemoryBytes: config.limits.evalMemory,
    ...(config.projects.gitCredentialsDir === undefined ? {} : { gitCredentialsDir: config.projects.gitCredentialsDir }),
    ...(deps.closure ? { closure: deps.closure } : {}),
  });
}

/**
 * What an evaluator needs to publish the `.drv` closure of what is to be built: staging and uploads
 * on its own host queue `host-evaluator-<host>`, our cache to see what it holds, and, beside a
 * signer, publishing straight through it instead of round trips through the eval workflow.
 */
export async function evaluatorClosureFor(
  config: ServerConfig,
  deps: { daemon: DaemonPool; host: string; signer?: Signer | undefined; log: Logger },
): Promise<ClosureDeps> {
  const host = `evaluator-${deps.host}`;
  const stagingDir = join(config.stateDir, 'uploads', host);
  await prepareStaging(stagingDir);
  const uploads = createUploadActivities({ stagingDir });
  const lookup = ourCacheLookupFor(config, { signer: deps.signer, warn: (message) => deps.log.warn(message) });
  const closure: ClosureDeps = { daemon: deps.daemon, inCache: (paths) => lookup.available(paths), uploads, host };
  return deps.signer ? { ...closure, publish: publishInProcess(deps.signer.activities, uploads) } : closure;
}

/**
 * Publishing through a signer in this process: the same sequence and targets a remote host gets
 * (workflows/publish-sequence.ts), as plain calls. For a builder's outputs and an evaluator's closure.
 */
export function publishInProcess(signer: SignerActivities, uploads: HostActivities): (staged: StagedUpload) => Promise<PublishOutcome> {
  return (staged) =>
    publishStaged(
      {
        targets: signer.prepareUpload,
        upload: uploads.uploadOutputs,
        publish: signer.publish,
        isExpired: (error) => error instanceof ApplicationFailure && error.type === UPLOAD_EXPIRED,
      },
      staged,
    );
}

/**
 * The build and upload activities of one builder host. Its staging directory is per host (several
 * in-process builders in tests must not clear each other's) and is emptied here: what an earlier
 * process left there belongs to no upload now.
 */
export async function builderActivitiesFor(
  config: ServerConfig,
  deps: {
    host: string;
    daemon: DaemonPool;
    logs: BuildLogSink;
    signer?: Signer | undefined;
    recordStart?: (drvPath: string) => Promise<void>;
  },
): Promise<BuilderActivities & HostActivities> {
  const stagingDir = join(config.stateDir, 'uploads', deps.host);
  await prepareStaging(stagingDir);
  const staging = new Staging();
  const upload = createUploadActivities({ stagingDir, staging });
  const signer = deps.signer?.activities;
  const build = createBuilderActivities({
    host: deps.host,
    slots: new Semaphore(config.builder.maxJobs),
    stagingDir,
    staging,
    stage: upload.stageOutputs,
    ...(deps.recordStart ? { recordStart: deps.recordStart } : {}),
    // A signer in this process: publish from here, through the same sequence and targets a remote host gets.
    ...(signer ? { publish: publishInProcess(signer, upload) } : {}),
    executor: await createExecutor({
      pool: deps.daemon,
      cache: builderCacheFor(config, deps.signer),
      trustedKeys: trustedKeysFor(config, deps.signer?.key),
      upstream: upstreamCachesFor(config),
      rootsDir: join(config.stateDir, 'gcroots'),
      verifyInputContents: config.builder.verifyInputContents,
      limits: {
        wallClockMs: config.limits.buildTimeout,
        maxSilenceMs: config.limits.maxSilent,
        maxLogBytes: config.limits.maxLogSize,
        maxOutputBytes: config.limits.maxOutputSize,
      },
    }),
    logs: deps.logs,
    logTailBytes: config.limits.logTail,
  });
  return { ...build, ...upload };
}
