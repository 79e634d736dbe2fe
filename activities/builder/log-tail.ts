/** The end of a build log, bounded in size: what the dashboard shows while a build runs. */

/** Bytes of log kept by default (`limits.log-tail`; docs/architecture.md, "Build states and limits"). */
export const LOG_TAIL_BYTES = 64 * 1024;

export class LogTail {
  private chunks: string[] = [];
  private size = 0;
  /** Lines seen in total, kept or not. */
  lines = 0;

  constructor(private readonly limit = LOG_TAIL_BYTES) {}

  push(line: string): void {
    const text = `${line}\n`;
    this.chunks.push(text);
    this.size += Buffer.byteLength(text);
    this.lines++;
    while (this.size > this.limit && this.chunks.length > 1) {
      this.size -= Buffer.byteLength(this.chunks.shift()!);
    }
  }

  text(): string {
    return this.chunks.join('');
  }

  /** The last line, for one-line failure summaries. */
  last(): string | undefined {
    return this.chunks.at(-1)?.trimEnd();
  }
}
