/**
 * zstd through the `zstd` command (Debian package `zstd`): Node 20 has no zstd in node:zlib.
 * Data streams through the subprocess with backpressure, so memory stays bounded whatever the size.
 * Small inputs (most outputs and logs of a CI run) are compressed and decompressed in-process with
 * zstd compiled to WebAssembly instead: starting a process from a large Node process costs more
 * than compressing a few hundred kilobytes.
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Zstd } from '@hpcc-js/wasm-zstd';
import { peek } from '../../lib/peek.ts';
import { ZstdError } from './errors.ts';

/** Options of a compression. */
export interface ZstdCompressOptions {
  /** Compression level (default 3, zstd's own default). */
  level?: number;
  /** Worker threads; 0 means one per core (default 0). */
  threads?: number;
}

/** The zstd program: `HARMONIA_CI_ZSTD` when set, else `zstd` from PATH. */
export function zstdCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.HARMONIA_CI_ZSTD || 'zstd';
}

const STDERR_LIMIT = 4096;

/** Runs `zstd args…` as a filter over `source`, yielding its output as it comes. */
async function* filter(source: AsyncIterable<Uint8Array>, args: string[], what: string): AsyncGenerator<Buffer> {
  const command = zstdCommand();
  const child = spawn(command, ['-q', '-c', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  let spawnError: Error | undefined;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let feedError: unknown;
  // Feeding runs beside the reading below; a broken pipe (zstd gave up) shows up as zstd's own exit.
  const feeding = pipeline(Readable.from(source), child.stdin).catch((error: unknown) => {
    feedError ??= error;
    child.stdout.destroy();
  });
  let finished = false;
  try {
    let readError: unknown;
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    } catch (error) {
      // The cause is usually zstd's own failure (or its absence): reported below with priority.
      readError = error;
    }
    await feeding;
    const exit = await closed;
    if (spawnError) {
      const missing = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
      throw new ZstdError(
        missing
          ? `cannot ${what}: the zstd command (${command}) is not installed; install the Debian package zstd (scripts/bootstrap.sh does) or set HARMONIA_CI_ZSTD`
          : `cannot ${what}: starting ${command} failed: ${spawnError.message}`,
        { cause: spawnError },
      );
    }
    if (feedError && !isBrokenPipe(feedError)) throw feedError;
    if (exit.code !== 0) {
      throw new ZstdError(`cannot ${what}: zstd exited with ${exit.signal ?? `code ${exit.code}`}: ${stderr.trim() || 'no message'}`);
    }
    if (readError) throw readError;
    finished = true;
  } finally {
    if (!finished) {
      child.kill('SIGKILL');
      await feeding;
      await closed;
    }
  }
}

function isBrokenPipe(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED';
}

/** Inputs up to this size are compressed in-process (WebAssembly); larger ones stream through `zstd`. */
export const IN_PROCESS_LIMIT = 256 * 1024;

let wasm: Promise<Zstd> | undefined;

/** Compresses a byte stream to one zstd frame sequence. */
export async function* zstdCompress(source: AsyncIterable<Uint8Array>, options: ZstdCompressOptions = {}): AsyncGenerator<Buffer> {
  const level = options.level ?? 3;
  const peeked = await peek(source, IN_PROCESS_LIMIT);
  if (peeked.ended) {
    wasm ??= Zstd.load();
    yield Buffer.from((await wasm).compress(Buffer.concat(peeked.head), level));
    return;
  }
  yield* filter(peeked.all(), [`-${level}`, `-T${options.threads ?? 0}`], 'compress with zstd');
}

/**
 * Decompresses a zstd stream; fails on corrupt or truncated input. A small stream whose frame
 * declares a content size within IN_PROCESS_LIMIT (what zstdCompress writes for small inputs) is
 * decompressed in-process: spawning `zstd` costs tens of milliseconds per object, which the
 * signer paid for every output it read back. Anything else, or anything the in-process decoder
 * refuses, goes through `zstd`, which decides; so memory stays bounded whatever a frame claims.
 */
export async function* zstdDecompress(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  // Incompressible data grows a little in zstd: room for that above the limit on what it unpacks to.
  const peeked = await peek(source, IN_PROCESS_LIMIT + 64 * 1024);
  if (peeked.ended) {
    const compressed = Buffer.concat(peeked.head);
    const declared = declaredContentSize(compressed);
    if (declared !== undefined && declared <= IN_PROCESS_LIMIT) {
      wasm ??= Zstd.load();
      const zstd = await wasm;
      let output: Uint8Array | undefined;
      try {
        output = zstd.decompress(compressed);
      } catch {
        // Several frames, a corrupt one, or more bytes than declared: the zstd command says which.
        zstd.reset();
      }
      if (output && output.length === declared) {
        if (output.length > 0) yield Buffer.from(output);
        return;
      }
    }
  }
  yield* filter(peeked.all(), ['-d'], 'decompress zstd data');
}

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * The content size a zstd frame header declares (RFC 8878, 3.1.1.1), or undefined when the data
 * does not start with a frame or the frame does not say.
 */
export function declaredContentSize(data: Buffer): number | undefined {
  if (data.length < 5 || data.readUInt32LE(0) !== ZSTD_MAGIC) return undefined;
  const descriptor = data[4]!;
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][sizeFlag]!;
  if (sizeBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryBytes;
  if (data.length < at + sizeBytes) return undefined;
  switch (sizeBytes) {
    case 1:
      return data[at]!;
    case 2:
      return data.readUInt16LE(at) + 256;
    case 4:
      return data.readUInt32LE(at);
    default:
      return Number(data.readBigUInt64LE(at));
  }
}
