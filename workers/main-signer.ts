/**
 * The signer role (`harmonia-ci worker signer`): the only process holding the signing key and the
 * storage credentials. It issues scoped upload targets and signs narinfo; several signers on the
 * queue are failover.
 */
import { openSigner } from '../activities/signer/setup.ts';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../lib/log.ts';
import { runRole } from './main-coordinator.ts';
import { instrumentSigner, type WorkerMetrics } from './metrics.ts';
import { createSignerWorker, runWorkers, type WorkerContext } from './roles.ts';
import type { RunningRole } from './wiring.ts';

export async function startSignerRole(options: {
  config: ServerConfig;
  ctx: WorkerContext;
  log: Logger;
  /** Counts signatures and refused requests (`--metrics-port`). */
  metrics?: WorkerMetrics | undefined;
}): Promise<RunningRole> {
  // A fleet's signer uses the configured key: a generated one would sign with a key nobody trusts.
  const signer = await openSigner(options.config, { generateKey: false, warn: (message) => options.log.warn(message) });
  try {
    const role = runRole(runWorkers([await createSignerWorker(options.ctx, instrumentSigner(signer.activities, options.metrics))]));
    options.log.info(`signing with ${signer.key.publicKey} into ${signer.backend.description}`);
    return {
      done: role.done,
      async stop() {
        await role.stop();
        await signer.close();
      },
    };
  } catch (error) {
    await signer.close();
    throw error;
  }
}
