/**
 * The builder's executor: prepares inputs (substitution, Frankenbuild prevention), builds through
 * the local daemon under limits with the log streamed, and reports each output's store path, NAR
 * hash, NAR size and references. GC roots cover inputs and outputs while it works.
 */
import { formatHash, hashEquals, type Hash } from '../core/hash.ts';
import type { PublicKey } from '../core/signing.ts';
import { DaemonError, ProtocolError } from '../protocol/errors.ts';
import type { DaemonPool } from '../protocol/pool.ts';
import type { BinaryCache } from './cache-client.ts';
import { ExecutorError, FrankenbuildError } from './errors.ts';
import { BuildRoots, removeStaleRoots } from './roots.ts';
import { runBuild } from './run-build.ts';
import { substitutePaths, type SubstituterDeps, type TrustedCache } from './substituter.ts';
import { DEFAULT_BUILD_LIMITS, type BuildLimits, type BuildOutcome, type BuildRequest, type BuiltOutputInfo, type InputReport } from './types.ts';

/** What an executor works with. */
export interface ExecutorOptions {
  pool: DaemonPool;
  /** Where inputs come from when the local store lacks them. */
  cache?: BinaryCache;
  /** Keys whose signatures make a narinfo acceptable. */
  trustedKeys?: readonly PublicKey[];
  /** Caches asked in order for what `cache` lacks, each with the keys its narinfos must be signed with. */
  upstream?: readonly TrustedCache[];
  /** Directory for the per-build GC root symlinks. */
  rootsDir: string;
  /** Defaults for every build (each request may override). */
  limits?: Partial<BuildLimits>;
  /**
   * Hash each input's contents (the daemon's NAR dump) instead of trusting the hash the store
   * registered: a build that ran here as root could have changed a store path in place.
   */
  verifyInputContents?: boolean;
}

/** Runs builds on this host. */
export interface Executor {
  build(request: BuildRequest): Promise<BuildOutcome>;
  /**
   * Makes `paths` valid here, substituting them and their references from the cache (signatures
   * checked): a builder whose store did not evaluate the jobset fetches each `.drv` this way.
   * Returns what it substituted.
   */
  ensureValid(paths: readonly string[]): Promise<string[]>;
  /** Root directories from crashed runs removed at start. */
  readonly staleRootsRemoved: readonly string[];
}

/** The executor's limits, each lowered where the request asks for less: a request never raises one. */
function tightened(defaults: BuildLimits, requested: Partial<BuildLimits> | undefined): BuildLimits {
  const limits = { ...defaults };
  for (const key of Object.keys(limits) as Array<keyof BuildLimits>) {
    const wanted = requested?.[key];
    if (wanted !== undefined && wanted > 0) limits[key] = Math.min(limits[key], wanted);
  }
  return limits;
}

/** Creates an executor, first removing GC roots left behind by crashed processes. */
export async function createExecutor(options: ExecutorOptions): Promise<Executor> {
  const staleRootsRemoved = await removeStaleRoots(options.rootsDir);
  const deps: SubstituterDeps = { pool: options.pool, cache: options.cache, trustedKeys: options.trustedKeys ?? [], upstream: options.upstream ?? [] };
  const defaults = { ...DEFAULT_BUILD_LIMITS, ...options.limits };
  const verify = options.verifyInputContents ?? false;
  return {
    staleRootsRemoved,
    build: (request) => executeBuild(deps, options.rootsDir, tightened(defaults, request.limits), request, verify),
    ensureValid: (paths) => substitutePaths(deps, paths),
  };
}

/**
 * Deletes local inputs whose NAR hash differs from the canonical one; returns them. Their roots are
 * dropped first (a rooted path cannot be deleted) and restored after. With `verify`, every input's
 * contents are hashed too (the daemon's dump, against the canonical hash or else the registered
 * one); without it, only the hash the store registered is compared.
 */
async function removeFrankenInputs(
  deps: SubstituterDeps,
  roots: BuildRoots,
  inputs: readonly string[],
  canonical: ReadonlyMap<string, Hash>,
  verify: boolean,
): Promise<string[]> {
  const checked = verify ? inputs : inputs.filter((path) => canonical.has(path));
  const replaced: string[] = [];
  for (const path of checked) {
    const differs = await deps.pool.use(async (client) => {
      const info = await client.queryPathInfo(path);
      if (!info) return false;
      if (!hashEquals(info.narHash, canonical.get(path) ?? info.narHash)) return true;
      if (!verify) return false;
      try {
        // The dump is checked against the registered hash as it streams: an error means the contents differ.
        await client.narFromPath(path, () => undefined);
        return false;
      } catch (error) {
        if (error instanceof ProtocolError) return true;
        throw error;
      }
    });
    if (differs) replaced.push(path);
  }
  for (const path of replaced) {
    await roots.remove(path);
    try {
      await deps.pool.use((client) => client.deletePaths([path]));
    } catch (error) {
      if (!(error instanceof DaemonError)) throw error;
      throw new FrankenbuildError(
        `local ${path} differs from its canonical NAR hash ${formatHash(canonical.get(path)!, 'base32')} and cannot be deleted ` +
          `(${error.daemonMessage}); find what keeps it with 'nix-store --query --roots ${path}' and '--referrers'`,
        { cause: error },
      );
    }
    await roots.add([path]);
  }
  return replaced;
}

async function prepareInputs(deps: SubstituterDeps, roots: BuildRoots, request: BuildRequest, inputs: readonly string[], verify: boolean): Promise<InputReport> {
  await roots.add(inputs);
  const canonical = request.canonicalNarHashes ?? new Map<string, Hash>();
  const replaced = await removeFrankenInputs(deps, roots, inputs, canonical, verify);
  const substituted = await substitutePaths(deps, inputs, canonical);
  return { substituted, replaced };
}

async function outputInfos(deps: SubstituterDeps, outputs: ReadonlyArray<readonly [string, string]>): Promise<BuiltOutputInfo[]> {
  return deps.pool.use(async (client) => {
    const infos: BuiltOutputInfo[] = [];
    for (const [name, path] of outputs) {
      const info = await client.queryPathInfo(path);
      if (!info) throw new ExecutorError(`the daemon reported success but output '${name}' (${path}) is not valid: check the daemon's store`);
      infos.push({ name, path, narHash: info.narHash, narSize: info.narSize, references: info.references });
    }
    return infos;
  });
}

async function executeBuild(deps: SubstituterDeps, rootsDir: string, limits: BuildLimits, request: BuildRequest, verify: boolean): Promise<BuildOutcome> {
  const started = performance.now();
  const { drv, drvPath } = request;
  const knownOutputs = [...drv.outputs].filter(([, output]) => output.path !== '').map(([name, output]) => [name, output.path] as const);
  const inputs = [...new Set([...drv.inputSrcs, ...request.inputPaths])];
  const roots = await BuildRoots.create(deps.pool, rootsDir, drvPath.slice(drvPath.lastIndexOf('/') + 1));
  try {
    await roots.add(knownOutputs.map(([, path]) => path));
    const inputReport = await prepareInputs(deps, roots, request, inputs, verify);
    const run = await runBuild(deps.pool, drvPath, drv, inputs, {
      limits,
      onLogLine: request.onLogLine,
      onActivity: request.onActivity,
      signal: request.signal,
    });
    const base = { inputs: inputReport, logBytes: run.logBytes, logTruncated: run.logTruncated, durationMs: 0 };
    const finish = (outcome: BuildOutcome): BuildOutcome => ({ ...outcome, durationMs: Math.round(performance.now() - started) });
    if (run.end.kind !== 'finished') return finish({ ...base, ...run.end });
    const { result } = run.end;
    if (!result.success) return finish({ ...base, kind: 'failed', status: result.status, message: result.errorMessage });

    // Floating content-addressed outputs are only known from the daemon's realisations.
    const realised = new Map(result.builtOutputs.map((o) => [o.outputName, o.outPath]));
    const outputPaths = [...drv.outputs.keys()].map((name) => [name, drv.outputs.get(name)!.path || realised.get(name) || ''] as const);
    await roots.add(outputPaths.map(([, path]) => path).filter((path) => path !== ''));
    const outputs = await outputInfos(deps, outputPaths);
    const totalBytes = outputs.reduce((sum, output) => sum + output.narSize, 0);
    if (totalBytes > limits.maxOutputBytes) {
      return finish({ ...base, kind: 'output-too-large', totalBytes, limitBytes: limits.maxOutputBytes, outputs });
    }
    return finish({ ...base, kind: 'succeeded', status: result.status, outputs });
  } finally {
    await roots.release();
  }
}
