/**
 * The worker protocol's framing (libutil/serialise.hh): every integer is a little-endian u64,
 * every string is its u64 length, its bytes, then zero padding to a multiple of 8.
 */
import type { Readable } from 'node:stream';
import { ConnectionClosedError, ProtocolError } from './errors.ts';

/** No single string in a well-formed conversation comes near this; a larger length means the stream is out of step. */
const MAX_STRING_BYTES = 1 << 30;

/** The socket is paused when this much unread data is buffered, so a slow consumer bounds memory. */
const HIGH_WATER_BYTES = 4 << 20;

const ZERO_PADDING = Buffer.alloc(8);

/** Padding after a string of `length` bytes. */
export function paddingFor(length: number): number {
  return (8 - (length % 8)) % 8;
}

/** Accumulates one request; `toBuffer()` gives the bytes to send. */
export class WireWriter {
  private readonly parts: Buffer[] = [];

  /** Appends an unsigned integer (must be a safe integer). */
  u64(value: number | bigint): this {
    const buf = Buffer.allocUnsafe(8);
    if (typeof value === 'bigint') buf.writeBigUInt64LE(value);
    else {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode ${value} as a u64`);
      buf.writeUInt32LE(value % 0x1_0000_0000, 0);
      buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), 4);
    }
    this.parts.push(buf);
    return this;
  }

  /** Appends a boolean as 0 or 1. */
  bool(value: boolean): this {
    return this.u64(value ? 1 : 0);
  }

  /** Appends length-prefixed, padded bytes. */
  bytes(data: Uint8Array): this {
    this.u64(data.length);
    this.parts.push(Buffer.from(data.buffer, data.byteOffset, data.length));
    const pad = paddingFor(data.length);
    if (pad > 0) this.parts.push(ZERO_PADDING.subarray(0, pad));
    return this;
  }

  /** Appends a UTF-8 string. */
  string(text: string): this {
    return this.bytes(Buffer.from(text, 'utf8'));
  }

  /** Appends a count followed by each string. */
  strings(list: Iterable<string>): this {
    const items = [...list];
    this.u64(items.length);
    for (const item of items) this.string(item);
    return this;
  }

  /** Appends a count followed by key/value string pairs. */
  stringPairs(pairs: Iterable<readonly [string, string]>): this {
    const items = [...pairs];
    this.u64(items.length);
    for (const [key, value] of items) this.string(key).string(value);
    return this;
  }

  /** The request so far, as one buffer. */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Reads protocol values from a byte stream, buffering and applying backpressure to the source. */
export class WireReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { need: number; wake: () => void } | undefined;
  private failure: Error | undefined;
  private paused = false;

  constructor(
    private readonly stream: Readable,
    private readonly describe: string,
  ) {
    stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= HIGH_WATER_BYTES && !this.paused) {
        this.paused = true;
        stream.pause();
      }
      this.notify();
    });
    stream.on('end', () => this.fail(new ConnectionClosedError(`${describe} closed the connection`)));
    stream.on('close', () => this.fail(new ConnectionClosedError(`${describe} closed the connection`)));
    stream.on('error', (error: Error) => this.fail(new ConnectionClosedError(`${describe}: ${error.message}`, { cause: error })));
  }

  /** Bytes received and not yet consumed. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.notify();
  }

  private notify(): void {
    const waiter = this.waiter;
    if (waiter && (this.buffered >= waiter.need || this.failure)) {
      this.waiter = undefined;
      waiter.wake();
    }
  }

  private async fill(need: number): Promise<void> {
    while (this.buffered < need) {
      if (this.failure) throw this.failure;
      if (this.paused) {
        this.paused = false;
        this.stream.resume();
      }
      await new Promise<void>((wake) => {
        this.waiter = { need, wake };
      });
    }
  }

  private take(length: number): Buffer {
    if (length === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= length) {
      out = first.subarray(0, length);
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
    } else {
      out = Buffer.allocUnsafe(length);
      let copied = 0;
      while (copied < length) {
        const chunk = this.chunks[0]!;
        const n = Math.min(chunk.length, length - copied);
        chunk.copy(out, copied, 0, n);
        copied += n;
        if (n === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(n);
      }
    }
    this.buffered -= length;
    if (this.paused && this.buffered < HIGH_WATER_BYTES / 2) {
      this.paused = false;
      this.stream.resume();
    }
    return out;
  }

  /** Exactly `length` bytes. */
  async readExact(length: number): Promise<Buffer> {
    if (this.buffered < length) await this.fill(length);
    return this.take(length);
  }

  /** Whatever is buffered, at least one byte and at most `max`: for streaming raw payloads. */
  async readSome(max: number): Promise<Buffer> {
    if (this.buffered === 0) await this.fill(1);
    return this.take(Math.min(max, this.buffered));
  }

  /** A u64 that must fit a JavaScript number exactly (sizes, counts, times). */
  async readU64(): Promise<number> {
    const buf = await this.readExact(8);
    const high = buf.readUInt32LE(4);
    if (high > 0x1f_ffff) throw new ProtocolError(`${this.describe} sent integer ${buf.readBigUInt64LE()} beyond 2^53: the stream is out of step`);
    return high * 0x1_0000_0000 + buf.readUInt32LE(0);
  }

  /** A u64 of any size (activity ids carry the daemon's pid in the high bits). */
  async readU64Big(): Promise<bigint> {
    return (await this.readExact(8)).readBigUInt64LE();
  }

  /** A 0/1 boolean. */
  async readBool(): Promise<boolean> {
    const value = await this.readU64();
    if (value > 1) throw new ProtocolError(`${this.describe} sent ${value} where a boolean (0 or 1) was expected`);
    return value === 1;
  }

  /** Length-prefixed, padded bytes. */
  async readBytes(): Promise<Buffer> {
    const length = await this.readU64();
    if (length > MAX_STRING_BYTES) throw new ProtocolError(`${this.describe} sent a ${length}-byte string: the stream is out of step`);
    const padded = length + paddingFor(length);
    const buf = await this.readExact(padded);
    for (let i = length; i < padded; i++) {
      if (buf[i] !== 0) throw new ProtocolError(`${this.describe} sent non-zero string padding`);
    }
    return buf.subarray(0, length);
  }

  /** A string, decoded as UTF-8 (store paths are ASCII; log lines may carry replacement characters). */
  async readString(): Promise<string> {
    return (await this.readBytes()).toString('utf8');
  }

  /** A count followed by that many strings. */
  async readStrings(): Promise<string[]> {
    const count = await this.readU64();
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(await this.readString());
    return out;
  }
}
