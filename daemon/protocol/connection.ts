/**
 * One conversation with the nix-daemon over its Unix socket: the handshake, then operations one
 * at a time. After any failure the stream is in an unknown state, so the connection marks itself
 * broken and the pool replaces it.
 */
import { connect, type Socket } from 'node:net';
import { WORKER_MAGIC_1, WORKER_MAGIC_2 } from './constants.ts';
import { ConnectionClosedError, DaemonNotRunningError, ProtocolError, ProtocolLayerError, UnsupportedProtocolVersionError } from './errors.ts';
import { processStderr, type StderrHandlers } from './stderr.ts';
import { CLIENT_PROTOCOL_VERSION, MINIMUM_PROTOCOL_VERSION, negotiateProtocolVersion, protocolMinor } from './version.ts';
import { WireReader, WireWriter } from './wire.ts';

/** Whether the daemon trusts us (sent by daemons speaking 1.35 or newer). */
export type DaemonTrust = 'trusted' | 'not-trusted' | 'unknown';

/** What an operation gets while it holds the connection. */
export interface ConnectionIO {
  readonly reader: WireReader;
  readonly minorVersion: number;
  send(data: Buffer): Promise<void>;
  stderr(handlers?: StderrHandlers): Promise<void>;
}

/** Opens `socketPath`, mapping "nobody listens" to DaemonNotRunningError. */
function openSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const onError = (error: NodeJS.ErrnoException) => {
      socket.destroy();
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK') reject(new DaemonNotRunningError(socketPath, error));
      else reject(new ProtocolLayerError(`cannot connect to the nix-daemon at ${socketPath}: ${error.message}`, { cause: error }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** A handshaken connection to the nix-daemon. */
export class DaemonConnection {
  private busy = false;
  private brokenBy: Error | undefined;
  private readonly reader: WireReader;
  /** Negotiated protocol version (`major << 8 | minor`). */
  protocolVersion = 0;
  /** The daemon's Nix version, e.g. "2.8.0" (sent by daemons speaking 1.33 or newer). */
  daemonNixVersion: string | undefined;
  trust: DaemonTrust = 'unknown';

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    this.reader = new WireReader(socket, `nix-daemon at ${socketPath}`);
    // The reader turns socket errors into ConnectionClosedError; this listener only keeps Node from throwing.
    socket.on('error', () => undefined);
    // A daemon worker that exits (daemon restart, crash) makes an idle connection useless: mark it
    // so the pool skips it instead of failing the next operation.
    socket.on('close', () => {
      this.brokenBy ??= new ConnectionClosedError(`the nix-daemon at ${socketPath} closed the connection`);
    });
  }

  /** Connects and performs the handshake; `handlers` receive the daemon's start-up messages. */
  static async open(socketPath: string, handlers?: StderrHandlers): Promise<DaemonConnection> {
    const connection = new DaemonConnection(await openSocket(socketPath), socketPath);
    try {
      await connection.handshake(handlers);
    } catch (error) {
      connection.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    return connection;
  }

  /** True once the stream can no longer be trusted; the pool drops such connections. */
  get broken(): boolean {
    return this.brokenBy !== undefined;
  }

  /** True while an operation holds the connection. */
  get inUse(): boolean {
    return this.busy;
  }

  private async handshake(handlers?: StderrHandlers): Promise<void> {
    await this.send(new WireWriter().u64(WORKER_MAGIC_1).toBuffer());
    const magic = await this.reader.readU64();
    if (magic !== WORKER_MAGIC_2) {
      throw new ProtocolError(`${this.socketPath} answered with magic 0x${magic.toString(16)}, not the nix-daemon's 0x${WORKER_MAGIC_2.toString(16)}`);
    }
    const daemonVersion = await this.reader.readU64();
    const version = negotiateProtocolVersion(daemonVersion);
    if (version === undefined) throw new UnsupportedProtocolVersionError(daemonVersion, MINIMUM_PROTOCOL_VERSION, CLIENT_PROTOCOL_VERSION);
    this.protocolVersion = version;
    // Our version, then "no CPU affinity" (1.14+) and "no reserved space" (1.11+), both obsolete.
    await this.send(new WireWriter().u64(CLIENT_PROTOCOL_VERSION).u64(0).u64(0).toBuffer());
    const minor = protocolMinor(version);
    if (minor >= 33) this.daemonNixVersion = await this.reader.readString();
    if (minor >= 35) {
      const trust = await this.reader.readU64();
      if (trust > 2) throw new ProtocolError(`daemon sent trust flag ${trust}, expected 0, 1 or 2`);
      this.trust = (['unknown', 'trusted', 'not-trusted'] as const)[trust]!;
    }
    await processStderr(this.reader, (data) => this.send(data), handlers);
  }

  private send(data: Buffer): Promise<void> {
    if (this.brokenBy) return Promise.reject(this.brokenBy);
    return new Promise((resolve, reject) => {
      this.socket.write(data, (error) => {
        if (error) reject(new ConnectionClosedError(`writing to the nix-daemon at ${this.socketPath}: ${error.message}`, { cause: error }));
        else resolve();
      });
    });
  }

  /**
   * Runs one operation with exclusive use of the connection. Any failure retires the connection,
   * even an error the daemon reported: when the daemon fails while still reading a request it hangs
   * up after the error (Nix 2.8 even sends the error twice), so reuse would read stale replies.
   */
  async exclusive<T>(operation: (io: ConnectionIO) => Promise<T>): Promise<T> {
    if (this.brokenBy) throw new ConnectionClosedError(`connection to ${this.socketPath} is broken: ${this.brokenBy.message}`, { cause: this.brokenBy });
    if (this.busy) throw new ProtocolLayerError('a daemon connection runs one operation at a time: take another from the pool');
    this.busy = true;
    const io: ConnectionIO = {
      reader: this.reader,
      minorVersion: protocolMinor(this.protocolVersion),
      send: (data) => this.send(data),
      stderr: (handlers) => processStderr(this.reader, (data) => this.send(data), handlers),
    };
    try {
      return await operation(io);
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      this.busy = false;
    }
  }

  /** Closes the socket at once; a build running for this connection is stopped by the daemon. */
  destroy(reason: Error = new ConnectionClosedError('connection closed by the client')): void {
    this.brokenBy ??= reason;
    this.socket.destroy();
  }

  /** Half-closes politely: the daemon sees end-of-file and ends the conversation. */
  close(): void {
    this.brokenBy ??= new ConnectionClosedError('connection closed by the client');
    this.socket.end();
  }
}
