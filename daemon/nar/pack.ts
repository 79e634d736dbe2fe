/**
 * Streaming NAR packer, byte-identical to `nix-store --dump`.
 *
 * Metadata calls (lstat, readdir, readlink, open, close) and reads of small files are
 * synchronous: they take microseconds on a local disk, and a thread-pool round trip per
 * call would make trees of many small files several times slower. Large files are read
 * asynchronously in 1 MiB chunks, one chunk ahead, so reading overlaps with whatever
 * the consumer does with the previous chunk (hashing, writing to a socket).
 */
import { closeSync, constants, lstatSync, openSync, read, readdirSync, readlinkSync, readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NarFileError } from './errors.ts';
import { encodeStrings, encodeU64, NAR_MAGIC, padding } from './format.ts';

/** Size of the chunks the packer yields and of its reads from large files. */
export const NAR_CHUNK_SIZE = 1 << 20;
/** Files up to this size are read synchronously straight into the output chunk. */
const SMALL_FILE_SIZE = 128 << 10;

const MAGIC = encodeStrings(NAR_MAGIC);
const DIRECTORY_OPEN = encodeStrings('(', 'type', 'directory');
const REGULAR_OPEN = encodeStrings('(', 'type', 'regular', 'contents');
const EXECUTABLE_OPEN = encodeStrings('(', 'type', 'regular', 'executable', '', 'contents');
const SYMLINK_OPEN = encodeStrings('(', 'type', 'symlink', 'target');
const ENTRY_OPEN = encodeStrings('entry', '(', 'name');
const ENTRY_NODE = encodeStrings('node');
const CLOSE = encodeStrings(')');
const SLASH = Buffer.from('/');

/** How packNar hands out its chunks. */
export interface PackOptions {
  /**
   * Reuse a chunk's memory once the next chunk is requested. Only for consumers that are
   * done with each chunk before asking for the next (hashing); a Writable keeps them.
   */
  recycleChunks?: boolean;
}

/**
 * Collects output into chunks of NAR_CHUNK_SIZE. Without recycling a sealed chunk is never
 * written again, so consumers may keep the chunks they receive.
 */
class ChunkBuilder {
  private readonly spare: Buffer[] = [];
  private buffer: Buffer = Buffer.allocUnsafeSlow(NAR_CHUNK_SIZE);
  private used = 0;
  private ready: Buffer[] = [];

  constructor(private readonly recycle: boolean) {}

  /** Appends bytes, sealing the current chunk when they do not fit. */
  put(bytes: Uint8Array): void {
    if (bytes.length > NAR_CHUNK_SIZE - this.used) this.seal();
    if (bytes.length > NAR_CHUNK_SIZE) {
      this.ready.push(Buffer.from(bytes));
      return;
    }
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Appends a framed string with raw bytes. */
  putString(bytes: Uint8Array): void {
    this.put(encodeU64(bytes.length));
    this.put(bytes);
    this.put(padding(bytes.length));
  }

  /** Makes room for `size` contiguous bytes (size <= NAR_CHUNK_SIZE) and returns where they go. */
  reserve(size: number): { buffer: Buffer; offset: number } {
    if (size > NAR_CHUNK_SIZE - this.used) this.seal();
    const offset = this.used;
    this.used += size;
    return { buffer: this.buffer, offset };
  }

  /** Moves the bytes collected so far to the ready list. */
  seal(): void {
    if (this.used === 0) return;
    this.ready.push(this.buffer.subarray(0, this.used));
    this.buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(NAR_CHUNK_SIZE);
    this.used = 0;
  }

  /** Takes back chunks the consumer is done with, when recycling. */
  release(chunks: Buffer[]): void {
    if (!this.recycle) return;
    for (const chunk of chunks) if (chunk.buffer.byteLength === NAR_CHUNK_SIZE) this.spare.push(Buffer.from(chunk.buffer));
  }

  /** True when sealed chunks are waiting to be taken. */
  get hasReady(): boolean {
    return this.ready.length > 0;
  }

  /** Yields the sealed chunks; once the consumer asks for more, they may be recycled. */
  *flush(): Generator<Buffer> {
    const ready = this.ready;
    this.ready = [];
    yield* ready;
    this.release(ready);
  }
}

interface DirectoryFrame {
  path: Buffer;
  names: Buffer[];
  next: number;
}

/** A regular file whose contents are streamed after its header. */
interface LargeFile {
  fd: number;
  size: number;
  path: Buffer;
}

function fileError(message: string, path: Buffer): NarFileError {
  const text = path.toString();
  return new NarFileError(message.replace('%s', `'${text}'`), text);
}

function readSmallFile(path: Buffer, size: number, out: ChunkBuilder): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const { buffer, offset } = out.reserve(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buffer, offset + done, size - done, done);
      if (n === 0) throw fileError('file %s shrank while it was being packed; retry when it is no longer being written', path);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes the header of the node at `path`; returns the file whose contents must follow, if any. */
function startNode(path: Buffer, out: ChunkBuilder, stack: DirectoryFrame[]): LargeFile | undefined {
  const stat = lstatSync(path);
  if (stat.isDirectory()) {
    out.put(DIRECTORY_OPEN);
    const names = readdirSync(path, { encoding: 'buffer' }).sort(Buffer.compare);
    stack.push({ path, names, next: 0 });
    return undefined;
  }
  if (stat.isSymbolicLink()) {
    out.put(SYMLINK_OPEN);
    out.putString(readlinkSync(path, { encoding: 'buffer' }));
  } else if (stat.isFile()) {
    out.put(stat.mode & constants.S_IXUSR ? EXECUTABLE_OPEN : REGULAR_OPEN);
    out.put(encodeU64(stat.size));
    if (stat.size > SMALL_FILE_SIZE) {
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      return { fd, size: stat.size, path };
    }
    readSmallFile(path, stat.size, out);
    out.put(padding(stat.size));
  } else {
    throw fileError('file %s has an unsupported type (only regular files, directories and symlinks fit in a NAR)', path);
  }
  finishLeaf(out, stack);
  return undefined;
}

/** Closes a file or symlink node and, inside a directory, its entry. */
function finishLeaf(out: ChunkBuilder, stack: DirectoryFrame[]): void {
  out.put(CLOSE);
  if (stack.length > 0) out.put(CLOSE);
}

function readChunk(fd: number, position: number, length: number, buffer: Buffer): Promise<Buffer> {
  const chunk = new Promise<Buffer>((resolve, reject) => {
    read(fd, buffer, 0, length, position, (error, bytesRead) => (error ? reject(error) : resolve(buffer.subarray(0, bytesRead))));
  });
  // The read may fail while the consumer holds the previous chunk; it is awaited later.
  chunk.catch(() => undefined);
  return chunk;
}

async function* streamLargeFile(file: LargeFile, recycle: boolean): AsyncGenerator<Buffer> {
  // When recycling, two buffers alternate: one with the chunk the consumer holds, one being filled.
  const buffers = recycle ? [Buffer.allocUnsafeSlow(NAR_CHUNK_SIZE), Buffer.allocUnsafeSlow(NAR_CHUNK_SIZE)] : [];
  const bufferFor = (index: number): Buffer => buffers[index % 2] ?? Buffer.allocUnsafeSlow(NAR_CHUNK_SIZE);
  let position = 0;
  let index = 0;
  let pending: Promise<Buffer> | undefined = readChunk(file.fd, 0, Math.min(NAR_CHUNK_SIZE, file.size), bufferFor(index));
  try {
    while (pending !== undefined) {
      const chunk: Buffer = await pending;
      pending = undefined;
      if (chunk.length === 0) throw fileError('file %s shrank while it was being packed; retry when it is no longer being written', file.path);
      position += chunk.length;
      index++;
      if (position < file.size) pending = readChunk(file.fd, position, Math.min(NAR_CHUNK_SIZE, file.size - position), bufferFor(index));
      yield chunk;
    }
  } finally {
    if (pending !== undefined) await pending.catch(() => undefined);
    closeSync(file.fd);
  }
}

/** Streams the NAR serialisation of the file, directory or symlink at `path`. */
export async function* packNar(path: string | Buffer, options: PackOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const recycle = options.recycleChunks ?? false;
  const out = new ChunkBuilder(recycle);
  const stack: DirectoryFrame[] = [];
  out.put(MAGIC);
  let next: Buffer | undefined = typeof path === 'string' ? Buffer.from(path) : path;
  for (;;) {
    if (next !== undefined) {
      const large = startNode(next, out, stack);
      next = undefined;
      if (large !== undefined) {
        out.seal();
        yield* out.flush();
        yield* streamLargeFile(large, recycle);
        out.put(padding(large.size));
        finishLeaf(out, stack);
      }
    }
    const frame = stack.at(-1);
    if (frame === undefined) break;
    const name = frame.names[frame.next++];
    if (name === undefined) {
      stack.pop();
      finishLeaf(out, stack);
    } else {
      out.put(ENTRY_OPEN);
      out.putString(name);
      out.put(ENTRY_NODE);
      next = Buffer.concat([frame.path, SLASH, name]);
    }
    if (out.hasReady) yield* out.flush();
  }
  out.seal();
  yield* out.flush();
}

/** Streams the NAR of `path` into `destination`, honouring backpressure; `end: false` leaves it open. */
export async function writeNar(path: string | Buffer, destination: Writable, options: { end?: boolean } = {}): Promise<void> {
  await pipeline(packNar(path), destination, { end: options.end ?? true });
}
