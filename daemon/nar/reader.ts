/** Pull-based reader over an async byte stream that knows its absolute offset, for the NAR parser. */
import { NarError } from './errors.ts';

const EMPTY = new Uint8Array(0);

export class ByteReader {
  private readonly source: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = EMPTY;
  private position = 0;
  private exhausted = false;
  /** Absolute offset of the next unread byte. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Loads the next non-empty chunk; false at the end of the stream. */
  private async pull(): Promise<boolean> {
    while (!this.exhausted) {
      const next = await this.source.next();
      if (next.done === true) {
        this.exhausted = true;
        break;
      }
      if (next.value.length > 0) {
        this.chunk = next.value;
        this.position = 0;
        return true;
      }
    }
    return false;
  }

  /** Reads exactly `length` bytes; the result may be a view into the source's chunk, valid until the next read. */
  async read(length: number, what: string): Promise<Uint8Array> {
    const available = this.chunk.length - this.position;
    if (available >= length) {
      const view = this.chunk.subarray(this.position, this.position + length);
      this.position += length;
      this.offset += length;
      return view;
    }
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (this.position === this.chunk.length && !(await this.pull())) {
        throw new NarError(`input ends in the middle of ${what} (truncated archive)`, this.offset);
      }
      const take = Math.min(length - filled, this.chunk.length - this.position);
      out.set(this.chunk.subarray(this.position, this.position + take), filled);
      this.position += take;
      this.offset += take;
      filled += take;
    }
    return out;
  }

  /** Reads a u64 little-endian number, refusing values a JS number cannot hold exactly. */
  async readU64(what: string): Promise<number> {
    const start = this.offset;
    const bytes = await this.read(8, what);
    const low = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16)) + bytes[3]! * 2 ** 24;
    const high = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16)) + bytes[7]! * 2 ** 24;
    if (high >= 2 ** 21) throw new NarError(`${what} is absurdly large (${BigInt(high) * 2n ** 32n + BigInt(low)})`, start);
    return high * 2 ** 32 + low;
  }

  /** Yields the next `length` bytes as views into the source's chunks, without copying. */
  async *stream(length: number, what: string): AsyncGenerator<Uint8Array> {
    let remaining = length;
    while (remaining > 0) {
      if (this.position === this.chunk.length && !(await this.pull())) {
        throw new NarError(`input ends in the middle of ${what} (truncated archive)`, this.offset);
      }
      const take = Math.min(remaining, this.chunk.length - this.position);
      const view = this.chunk.subarray(this.position, this.position + take);
      this.position += take;
      this.offset += take;
      remaining -= take;
      yield view;
    }
  }

  /** True when no bytes remain in the stream. */
  async atEnd(): Promise<boolean> {
    return this.position === this.chunk.length && !(await this.pull());
  }

  /** Stops the source early (destroys a stream source). */
  async close(): Promise<void> {
    if (!this.exhausted) await this.source.return?.();
  }
}
