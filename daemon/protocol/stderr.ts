/**
 * The stream of log messages the daemon sends while it works on an operation, ending with
 * STDERR_LAST (go on and read the reply) or STDERR_ERROR (the operation failed).
 */
import { DaemonError, ProtocolError } from './errors.ts';
import { Stderr } from './constants.ts';
import { WireWriter } from './wire.ts';
import type { WireReader } from './wire.ts';

/** A typed field of an activity or result: Nix sends ints and strings. */
export type LogField = number | bigint | string;

/** STDERR_START_ACTIVITY. */
export interface ActivityStart {
  id: bigint;
  level: number;
  type: number;
  text: string;
  fields: LogField[];
  parent: bigint;
}

/** STDERR_RESULT. */
export interface ActivityResult {
  id: bigint;
  type: number;
  fields: LogField[];
}

/** Callbacks for what the daemon says while it works; all optional. */
export interface StderrHandlers {
  /** STDERR_NEXT: a message for the user, without its trailing newline. */
  onMessage?(text: string): void;
  onStartActivity?(activity: ActivityStart): void;
  onStopActivity?(id: bigint): void;
  onResult?(result: ActivityResult): void;
  /** STDERR_READ: the daemon asks for up to `max` bytes of the operation's payload. */
  readSource?(max: number): Promise<Uint8Array>;
  /** STDERR_WRITE: payload bytes from the daemon. */
  writeSink?(data: Uint8Array): Promise<void> | void;
}

async function readFields(reader: WireReader): Promise<LogField[]> {
  const count = await reader.readU64();
  const fields: LogField[] = [];
  for (let i = 0; i < count; i++) {
    const type = await reader.readU64();
    if (type === 0) {
      const value = await reader.readU64Big();
      fields.push(value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value);
    } else if (type === 1) fields.push(await reader.readString());
    else throw new ProtocolError(`daemon sent a log field of unknown type ${type}`);
  }
  return fields;
}

async function readError(reader: WireReader): Promise<DaemonError> {
  const type = await reader.readString();
  if (type !== 'Error') throw new ProtocolError(`daemon sent an error of type '${type}', expected 'Error'`);
  const level = await reader.readU64();
  await reader.readString(); // the error's name: always "Error", kept on the wire for compatibility
  const message = await reader.readString();
  if ((await reader.readU64()) !== 0) throw new ProtocolError('daemon sent an error with a position, which no Nix version does');
  const traceCount = await reader.readU64();
  const traces = [];
  for (let i = 0; i < traceCount; i++) {
    if ((await reader.readU64()) !== 0) throw new ProtocolError('daemon sent an error trace with a position, which no Nix version does');
    traces.push({ hint: await reader.readString() });
  }
  return new DaemonError(message, level, traces);
}

/**
 * Consumes stderr messages until STDERR_LAST. Throws the DaemonError of STDERR_ERROR after the
 * whole message is read, so the connection stays in step for the next operation.
 */
export async function processStderr(reader: WireReader, send: (data: Buffer) => Promise<void>, handlers: StderrHandlers = {}): Promise<void> {
  for (;;) {
    const tag = await reader.readU64();
    switch (tag) {
      case Stderr.Last:
        return;
      case Stderr.Error:
        throw await readError(reader);
      case Stderr.Next: {
        const text = await reader.readString();
        handlers.onMessage?.(text.endsWith('\n') ? text.slice(0, -1) : text);
        break;
      }
      case Stderr.StartActivity: {
        const id = await reader.readU64Big();
        const level = await reader.readU64();
        const type = await reader.readU64();
        const text = await reader.readString();
        const fields = await readFields(reader);
        const parent = await reader.readU64Big();
        handlers.onStartActivity?.({ id, level, type, text, fields, parent });
        break;
      }
      case Stderr.StopActivity: {
        // Read before calling: an optional call would skip evaluating its argument, and the read with it.
        const id = await reader.readU64Big();
        handlers.onStopActivity?.(id);
        break;
      }
      case Stderr.Result: {
        const id = await reader.readU64Big();
        const type = await reader.readU64();
        const fields = await readFields(reader);
        handlers.onResult?.({ id, type, fields });
        break;
      }
      case Stderr.Read: {
        const max = await reader.readU64();
        if (!handlers.readSource) throw new ProtocolError('daemon asked for data (STDERR_READ) during an operation that sends none');
        const chunk = await handlers.readSource(max);
        await send(new WireWriter().bytes(chunk.subarray(0, max)).toBuffer());
        break;
      }
      case Stderr.Write: {
        const data = await reader.readBytes();
        if (!handlers.writeSink) throw new ProtocolError('daemon sent data (STDERR_WRITE) during an operation that expects none');
        await handlers.writeSink(data);
        break;
      }
      default:
        throw new ProtocolError(`daemon sent unknown stderr message 0x${tag.toString(16)}: the stream is out of step`);
    }
  }
}
