/** Looking at the start of a byte stream before deciding how to handle all of it. */

export interface Peeked {
  /** The chunks read so far. */
  head: Uint8Array[];
  /** Bytes in `head`. */
  size: number;
  /** The stream ended within the limit: `head` is all of it. */
  ended: boolean;
  /** The whole stream: `head`, then whatever was not read yet. Iterate it once. */
  all(): AsyncGenerator<Uint8Array>;
}

/** Reads `source` until it ends or more than `limit` bytes have come. */
export async function peek(source: AsyncIterable<Uint8Array>, limit: number): Promise<Peeked> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size <= limit) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    size += next.value.length;
  }
  return {
    head,
    size,
    ended,
    async *all() {
      yield* head;
      if (ended) return;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    },
  };
}
