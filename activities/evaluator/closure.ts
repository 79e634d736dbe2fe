/**
 * What builders on other machines need before they can build: the closure of the `.drv` files of
 * the derivations to build, with their input sources. The evaluator holds them in its store; the
 * ones our cache lacks are staged here (NAR → zstd, as a builder stages outputs) in batches,
 * references first so the cache is closed under references at every step, and then published
 * through the signer — by the eval workflow over this host's queue (workflows/publish.ts), or here
 * when a signer shares the process. The signer checks each path against its contents before it
 * signs (activities/signer/content-address.ts).
 */
import { toNarHash } from '../../daemon/core/hash.ts';
import type { DaemonPool } from '../../daemon/protocol/pool.ts';
import type { PathInfo } from '../../daemon/protocol/path-info.ts';
import type { HostUploads } from '../builder/upload.ts';
import type { PublishOutcome, StagedUpload } from '../types.ts';

/** Paths per staged batch: a batch travels in workflow history, so it stays well under its payload limit. */
export const CLOSURE_BATCH = 200;

export interface ClosureDeps {
  daemon: DaemonPool;
  /**
   * Which of these paths our cache holds (read as builders read it; hits remembered, misses not,
   * workers/caches.ts). A cache that cannot be asked answers "none": the signer skips what the
   * cache already holds, so the cost is an upload, not an error.
   */
  inCache: (paths: string[]) => Promise<Set<string>>;
  /** Staging and the host-queue upload of this evaluator. */
  uploads: HostUploads;
  /** This evaluator's host name: the eval workflow uploads through its queue. */
  host: string;
  /** Set when a signer shares this process: publish at once, no round trips through the workflow. */
  publish?: (staged: StagedUpload) => Promise<PublishOutcome>;
}

/** The closure of `roots` in the local store, references before referrers. */
export async function storeClosure(daemon: DaemonPool, roots: Iterable<string>): Promise<PathInfo[]> {
  const infos = new Map<string, PathInfo>();
  let frontier = [...new Set(roots)];
  await daemon.use(async (client) => {
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const path of frontier) {
        if (infos.has(path)) continue;
        const info = await client.queryPathInfo(path);
        if (!info) throw new Error(`${path} is not valid in the evaluator's store: the evaluation produced it, so the store lost it since (garbage collection?)`);
        infos.set(path, info);
        for (const ref of info.references) if (!infos.has(ref)) next.push(ref);
      }
      frontier = [...new Set(next)];
    }
  });
  const ordered: PathInfo[] = [];
  const visited = new Set<string>();
  const visit = (info: PathInfo): void => {
    if (visited.has(info.path)) return;
    visited.add(info.path);
    for (const ref of info.references) if (ref !== info.path) visit(infos.get(ref)!);
    ordered.push(info);
  };
  for (const info of infos.values()) visit(info);
  return ordered;
}

/**
 * Stages the closure of `drvPaths` that our cache lacks, and publishes it when a signer is here.
 * Returns the batches left for the eval workflow to publish, and how many paths went out here.
 */
export async function publishDerivationClosure(
  deps: ClosureDeps,
  evalId: string,
  drvPaths: Iterable<string>,
  progress: (what: string) => void,
): Promise<{ batches: StagedUpload[]; published: number }> {
  const closure = await storeClosure(deps.daemon, drvPaths);
  const present = await deps.inCache(closure.map((info) => info.path));
  const missing = closure.filter((info) => !present.has(info.path));
  const batches: StagedUpload[] = [];
  let published = 0;
  for (let i = 0; i < missing.length; i += CLOSURE_BATCH) {
    const chunk = missing.slice(i, i + CLOSURE_BATCH);
    progress(`staging ${i + chunk.length}/${missing.length} derivations and sources for builders`);
    const outputs = chunk.map((info) => ({ name: 'out', path: info.path, narHash: toNarHash(info.narHash), narSize: info.narSize, references: info.references }));
    const staged: StagedUpload = {
      ...(await deps.uploads.stageOutputs({ drvPath: `/closure/eval-${evalId}-${i / CLOSURE_BATCH}`, system: 'closure', outputs })),
      kind: 'closure',
    };
    if (deps.publish) {
      await deps.publish(staged);
      published += chunk.length;
    } else {
      batches.push(staged);
    }
  }
  return { batches, published };
}
