/**
 * Typed worker-protocol operations over one daemon connection. Obtain clients from a DaemonPool;
 * a client runs one operation at a time.
 */
import type { Derivation } from '../core/derivation.ts';
import { formatDerivedPath, readBuildResult, writeBasicDerivation, type BuildResult, type DerivedPath, type KeyedBuildResult } from './build-wire.ts';
import { BuildMode, GcAction, Op, type BuildModeValue } from './constants.ts';
import type { DaemonConnection } from './connection.ts';
import { InvalidPathError, ProtocolError } from './errors.ts';
import { addToStoreNar, narFromPath, type NarImport } from './nar-transfer.ts';
import { writeClientSettings, type ClientSettings } from './options.ts';
import { readPathInfo, type PathInfo } from './path-info.ts';
import type { StderrHandlers } from './stderr.ts';
import { protocolMinor } from './version.ts';
import { WireWriter, type WireReader } from './wire.ts';

async function expectOne(reader: WireReader, what: string): Promise<void> {
  const value = await reader.readU64();
  if (value !== 1) throw new ProtocolError(`daemon answered ${what} with ${value}, expected 1`);
}

/** What query-missing reports for a set of targets. */
export interface MissingPaths {
  willBuild: string[];
  willSubstitute: string[];
  unknown: string[];
  downloadSize: number;
  narSize: number;
}

/** Result of deleting paths. */
export interface DeleteResult {
  deleted: string[];
  bytesFreed: number;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Operations on one daemon connection. */
export class DaemonClient {
  constructor(readonly connection: DaemonConnection) {}

  /** Negotiated protocol minor version. */
  get minorVersion(): number {
    return protocolMinor(this.connection.protocolVersion);
  }

  /** Sends one request, relays its stderr stream, then reads the reply. */
  private simple<T>(op: number, body: (w: WireWriter) => void, reply: (r: WireReader) => Promise<T>, handlers?: StderrHandlers): Promise<T> {
    return this.connection.exclusive(async (io) => {
      const writer = new WireWriter().u64(op);
      body(writer);
      await io.send(writer.toBuffer());
      await io.stderr(handlers);
      return reply(io.reader);
    });
  }

  /** Sends set-options (done once per connection by the pool). */
  setOptions(settings: ClientSettings): Promise<void> {
    return this.simple(Op.SetOptions, (w) => writeClientSettings(w, settings), async () => undefined);
  }

  /** True when `path` is valid in the store. */
  isValidPath(path: string): Promise<boolean> {
    return this.simple(Op.IsValidPath, (w) => w.string(path), (r) => r.readBool());
  }

  /** The subset of `paths` that is valid (no substitution). */
  queryValidPaths(paths: readonly string[]): Promise<string[]> {
    return this.simple(
      Op.QueryValidPaths,
      (w) => w.strings(paths).bool(false),
      (r) => r.readStrings(),
    );
  }

  /** Metadata of `path`, or undefined when it is not valid. */
  queryPathInfo(path: string): Promise<PathInfo | undefined> {
    return this.simple(
      Op.QueryPathInfo,
      (w) => w.string(path),
      async (r) => ((await r.readBool()) ? readPathInfo(r, path) : undefined),
    );
  }

  /** What building `targets` would need: builds, substitutions and unknown paths. */
  queryMissing(targets: readonly DerivedPath[]): Promise<MissingPaths> {
    return this.simple(
      Op.QueryMissing,
      (w) => w.strings(targets.map(formatDerivedPath)),
      async (r) => ({
        willBuild: await r.readStrings(),
        willSubstitute: await r.readStrings(),
        unknown: await r.readStrings(),
        downloadSize: await r.readU64(),
        narSize: await r.readU64(),
      }),
    );
  }

  /** Builds (or substitutes) `targets` and their dependencies; throws DaemonError when any fails. */
  buildPaths(targets: readonly DerivedPath[], handlers?: StderrHandlers, mode: BuildModeValue = BuildMode.Normal): Promise<void> {
    return this.simple(
      Op.BuildPaths,
      (w) => w.strings(targets.map(formatDerivedPath)).u64(mode),
      (r) => expectOne(r, 'build-paths'),
      handlers,
    );
  }

  /** Like buildPaths, but reports a BuildResult per target instead of throwing on a failed build. */
  buildPathsWithResults(targets: readonly DerivedPath[], handlers?: StderrHandlers, mode: BuildModeValue = BuildMode.Normal): Promise<KeyedBuildResult[]> {
    return this.simple(
      Op.BuildPathsWithResults,
      (w) => w.strings(targets.map(formatDerivedPath)).u64(mode),
      async (r) => {
        const count = await r.readU64();
        const results: KeyedBuildResult[] = [];
        for (let i = 0; i < count; i++) {
          const target = await r.readString();
          results.push({ target, ...(await readBuildResult(r, this.minorVersion)) });
        }
        return results;
      },
      handlers,
    );
  }

  /**
   * Builds one derivation whose inputs are already valid, without reading its `.drv` from the store.
   * `inputSrcs` must hold the drv's own sources plus the output paths it uses from input derivations.
   */
  buildDerivation(
    drvPath: string,
    drv: Derivation,
    inputSrcs: readonly string[],
    handlers?: StderrHandlers,
    mode: BuildModeValue = BuildMode.Normal,
  ): Promise<BuildResult> {
    return this.simple(
      Op.BuildDerivation,
      (w) => {
        w.string(drvPath);
        writeBasicDerivation(w, drv, inputSrcs);
        w.u64(mode);
      },
      (r) => readBuildResult(r, this.minorVersion),
      handlers,
    );
  }

  /** Protects `path` from garbage collection for as long as this connection lives. */
  addTempRoot(path: string): Promise<void> {
    return this.simple(Op.AddTempRoot, (w) => w.string(path), (r) => expectOne(r, 'add-temp-root'));
  }

  /** Registers `symlinkPath` (a symlink to a store path, outside the store) as an indirect GC root. */
  addIndirectRoot(symlinkPath: string): Promise<void> {
    return this.simple(Op.AddIndirectRoot, (w) => w.string(symlinkPath), (r) => expectOne(r, 'add-indirect-root'));
  }

  /** Deletes exactly `paths` (collect-garbage, delete-specific); fails if any is still alive. */
  deletePaths(paths: readonly string[]): Promise<DeleteResult> {
    return this.simple(
      Op.CollectGarbage,
      (w) => w.u64(GcAction.DeleteSpecific).strings(paths).bool(false).u64(U64_MAX).u64(0).u64(0).u64(0),
      async (r) => {
        const deleted = await r.readStrings();
        const bytesFreed = await r.readU64();
        await r.readU64(); // obsolete field
        return { deleted, bytesFreed };
      },
    );
  }

  /**
   * Streams the NAR serialisation of `path` to `sink`, chunk by chunk. The bytes are checked against
   * the registered NAR hash at the end: if this throws, discard what the sink received.
   */
  async narFromPath(path: string, sink: (chunk: Uint8Array) => Promise<void> | void): Promise<PathInfo> {
    const info = await this.queryPathInfo(path);
    if (!info) throw new InvalidPathError(path);
    await this.connection.exclusive((io) => narFromPath(io, info, sink));
    return info;
  }

  /** Imports a NAR as `info.path`, streaming `source`; the daemon checks hash and size. */
  addToStoreNar(request: NarImport, handlers?: StderrHandlers): Promise<void> {
    return this.connection.exclusive((io) => addToStoreNar(io, request, handlers));
  }
}
