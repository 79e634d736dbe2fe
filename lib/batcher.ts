/**
 * Group commit for database round trips. Calls made while a batch is in flight wait and then go
 * together as the next batch, so N concurrent callers cost about one round trip per flush
 * instead of N: with no waiting added when the database is idle (a lone call runs at once).
 * This matters most for the embedded database, which serves a single connection.
 */
export class Batcher<I, O> {
  private queue: Array<{ input: I; resolve(output: O): void; reject(error: unknown): void }> = [];
  private running = false;

  /**
   * @param run executes one batch and returns one output per input, in order
   * @param key inputs with the same key never share a batch (later ones wait for the next), so a
   *   batch never touches one row twice
   */
  constructor(
    private readonly run: (inputs: I[]) => Promise<O[]>,
    private readonly options: { maxBatch?: number; key?: (input: I) => string } = {},
  ) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      void this.drain();
    });
  }

  private take(): typeof this.queue {
    const max = this.options.maxBatch ?? 500;
    const { key } = this.options;
    if (!key) return this.queue.splice(0, max);
    const seen = new Set<string>();
    const batch: typeof this.queue = [];
    const rest: typeof this.queue = [];
    for (const call of this.queue) {
      const k = key(call.input);
      // A later call for a key already deferred stays behind it: order per key is kept.
      if (batch.length >= max || seen.has(k)) {
        rest.push(call);
        seen.add(k);
      } else {
        seen.add(k);
        batch.push(call);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        try {
          const outputs = await this.run(batch.map((call) => call.input));
          batch.forEach((call, i) => call.resolve(outputs[i]!));
        } catch (error) {
          for (const call of batch) call.reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
