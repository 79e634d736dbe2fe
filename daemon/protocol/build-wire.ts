/** Wire forms used by the build operations: derived paths, BasicDerivation and BuildResult. */
import type { Derivation } from '../core/derivation.ts';
import { formatStorePath, parseStorePathBaseName } from '../core/store-path.ts';
import { BUILD_STATUSES, SUCCESSFUL_BUILD_STATUSES, type BuildStatus } from './constants.ts';
import { ProtocolError, stripAnsi } from './errors.ts';
import type { WireReader, WireWriter } from './wire.ts';

/** A thing to build or substitute: a plain store path, or outputs of a derivation (`*` or empty = all). */
export type DerivedPath = string | { drvPath: string; outputs?: readonly string[] };

/** Renders a derived path as protocol 1.30+ expects: `path` or `drv!out1,out2` / `drv!*`. */
export function formatDerivedPath(target: DerivedPath): string {
  if (typeof target === 'string') return target;
  const outputs = target.outputs && target.outputs.length > 0 ? target.outputs.join(',') : '*';
  return `${target.drvPath}!${outputs}`;
}

/**
 * Writes a BasicDerivation: a derivation whose input derivations are already resolved to output
 * paths in `inputSrcs` (the daemon builds it without looking at any `.drv` file).
 */
export function writeBasicDerivation(writer: WireWriter, drv: Derivation, inputSrcs: readonly string[]): void {
  writer.u64(drv.outputs.size);
  for (const [name, output] of drv.outputs) writer.string(name).string(output.path).string(output.hashAlgo).string(output.hash);
  writer.strings([...new Set(inputSrcs)].sort());
  writer.string(drv.platform).string(drv.builder).strings(drv.args);
  writer.stringPairs(drv.env);
}

/** An output the daemon reports as built, from the realisation it sends. */
export interface BuiltOutput {
  outputName: string;
  outPath: string;
}

/** The outcome of build-derivation. */
export interface BuildResult {
  status: BuildStatus;
  success: boolean;
  errorMessage: string;
  timesBuilt: number;
  isNonDeterministic: boolean;
  /** Seconds since the epoch (0 when the daemon did not build). */
  startTime: number;
  stopTime: number;
  /** CPU time of the builder in microseconds (protocol 1.37+). */
  cpuUserMicros: number | undefined;
  cpuSystemMicros: number | undefined;
  builtOutputs: BuiltOutput[];
}

/** A BuildResult together with the derived path it is for (as the daemon renders it). */
export interface KeyedBuildResult extends BuildResult {
  target: string;
}

/** The exit code nix-build would use for these results (Worker::exitStatus): 100 + flags, or 1. */
export function buildExitCode(results: readonly BuildResult[]): number {
  const failed = results.filter((r) => !r.success);
  if (failed.length === 0) return 0;
  const has = (status: BuildStatus) => failed.some((r) => r.status === status);
  let mask = 0;
  if (has('PermanentFailure') || has('TimedOut') || has('OutputRejected') || has('DependencyFailed')) mask |= 0x04;
  if (has('TimedOut')) mask |= 0x01;
  if (has('OutputRejected')) mask |= 0x02;
  if (has('NotDeterministic')) mask |= 0x08;
  return mask === 0 ? 1 : mask | 0x60;
}

async function readOptionalMicros(reader: WireReader): Promise<number | undefined> {
  const tag = await reader.readU64();
  if (tag === 0) return undefined;
  if (tag !== 1) throw new ProtocolError(`daemon sent optional tag ${tag}, expected 0 or 1`);
  return reader.readU64();
}

function parseRealisation(key: string, json: string): BuiltOutput {
  const bang = key.lastIndexOf('!');
  let outPath: unknown;
  try {
    outPath = (JSON.parse(json) as { outPath?: unknown }).outPath;
  } catch {
    throw new ProtocolError(`daemon sent a realisation for ${key} that is not JSON: ${json.slice(0, 200)}`);
  }
  if (bang < 0 || typeof outPath !== 'string') throw new ProtocolError(`daemon sent a malformed realisation for '${key}'`);
  // Realisations name the output by its base name; callers want the full store path.
  const fullPath = outPath.startsWith('/') ? outPath : formatStorePath(parseStorePathBaseName(outPath));
  return { outputName: key.slice(bang + 1), outPath: fullPath };
}

/** Reads a BuildResult at protocol minor version `minor` (1.34 and newer). */
export async function readBuildResult(reader: WireReader, minor: number): Promise<BuildResult> {
  const code = await reader.readU64();
  const status: BuildStatus = BUILD_STATUSES[code] ?? `Unknown(${code})`;
  const errorMessage = stripAnsi(await reader.readString());
  const timesBuilt = await reader.readU64();
  const isNonDeterministic = await reader.readBool();
  const startTime = await reader.readU64();
  const stopTime = await reader.readU64();
  let cpuUserMicros: number | undefined;
  let cpuSystemMicros: number | undefined;
  if (minor >= 37) {
    cpuUserMicros = await readOptionalMicros(reader);
    cpuSystemMicros = await readOptionalMicros(reader);
  }
  const count = await reader.readU64();
  const builtOutputs: BuiltOutput[] = [];
  for (let i = 0; i < count; i++) {
    const key = await reader.readString();
    builtOutputs.push(parseRealisation(key, await reader.readString()));
  }
  const success = SUCCESSFUL_BUILD_STATUSES.has(status);
  return { status, success, errorMessage, timesBuilt, isNonDeterministic, startTime, stopTime, cpuUserMicros, cpuSystemMicros, builtOutputs };
}
