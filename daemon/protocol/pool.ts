/**
 * A bounded pool of daemon connections for one builder. A connection that broke (socket closed,
 * stream out of step, build interrupted) is dropped and a fresh one is opened on demand, so a
 * restarted or hiccuping daemon costs one failed operation at most, never the builder.
 */
import { DaemonClient } from './client.ts';
import { DaemonConnection } from './connection.ts';
import { ConnectionClosedError } from './errors.ts';
import { DEFAULT_CLIENT_SETTINGS, type ClientSettings } from './options.ts';

/** Where the system daemon listens unless NIX_DAEMON_SOCKET_PATH says otherwise. */
export const DEFAULT_DAEMON_SOCKET = '/nix/var/nix/daemon-socket/socket';

/** The socket to use: an explicit path, else NIX_DAEMON_SOCKET_PATH, else the system default. */
export function resolveSocketPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? (env.NIX_DAEMON_SOCKET_PATH || DEFAULT_DAEMON_SOCKET);
}

/** Options of a DaemonPool. */
export interface DaemonPoolOptions {
  socketPath?: string;
  /** Connections open at once (default 4); further callers wait. */
  maxConnections?: number;
  /** Sent with set-options on every new connection. */
  settings?: Partial<ClientSettings>;
}

interface Waiter {
  resolve: (client: DaemonClient) => void;
  reject: (error: unknown) => void;
}

/** Bounded set of daemon connections. */
export class DaemonPool {
  readonly socketPath: string;
  private readonly maxConnections: number;
  private readonly settings: ClientSettings;
  private readonly idle: DaemonClient[] = [];
  private readonly waiters: Waiter[] = [];
  private open = 0;
  private closed = false;

  constructor(options: DaemonPoolOptions = {}) {
    this.socketPath = resolveSocketPath(options.socketPath);
    this.maxConnections = options.maxConnections ?? 4;
    this.settings = { ...DEFAULT_CLIENT_SETTINGS, ...options.settings, overrides: { ...options.settings?.overrides } };
  }

  /** Connections currently open (idle or in use). */
  get size(): number {
    return this.open;
  }

  private async connect(): Promise<DaemonClient> {
    const connection = await DaemonConnection.open(this.socketPath);
    const client = new DaemonClient(connection);
    try {
      await client.setOptions(this.settings);
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return client;
  }

  /** Takes a connection, opening one if below the limit, else waiting for a release. */
  async acquire(): Promise<DaemonClient> {
    if (this.closed) throw new ConnectionClosedError(`the daemon pool for ${this.socketPath} is closed`);
    for (let client = this.idle.pop(); client; client = this.idle.pop()) {
      if (!client.connection.broken) return client;
      this.open--;
    }
    if (this.open < this.maxConnections) {
      this.open++;
      try {
        return await this.connect();
      } catch (error) {
        this.open--;
        this.wakeWaiter();
        throw error;
      }
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Returns a connection; a broken one, or one released with `discard`, is closed instead of reused. */
  release(client: DaemonClient, options: { discard?: boolean } = {}): void {
    if (client.connection.broken || options.discard || this.closed) {
      client.connection.close();
      this.open--;
      this.wakeWaiter();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(client);
    else this.idle.push(client);
  }

  /** A slot freed up: let the first waiter open a fresh connection. */
  private wakeWaiter(): void {
    const waiter = this.waiters.shift();
    if (!waiter) return;
    this.acquire().then(waiter.resolve, waiter.reject);
  }

  /**
   * Runs `operation` on a pooled connection. When the connection turns out to be dead (for instance
   * the daemon restarted while it sat idle) the operation runs once more on a fresh connection, so
   * pass `retry: false` for operations that must not run twice.
   */
  async use<T>(operation: (client: DaemonClient) => Promise<T>, options: { retry?: boolean } = {}): Promise<T> {
    const first = await this.acquire();
    try {
      return await operation(first);
    } catch (error) {
      if (!(error instanceof ConnectionClosedError) || options.retry === false) throw error;
    } finally {
      this.release(first);
    }
    const fresh = await this.acquire();
    try {
      return await operation(fresh);
    } finally {
      this.release(fresh);
    }
  }

  /** Closes idle connections and refuses new work; connections in use close when released. */
  async close(): Promise<void> {
    this.closed = true;
    for (const client of this.idle.splice(0)) {
      client.connection.close();
      this.open--;
    }
    for (const waiter of this.waiters.splice(0)) waiter.reject(new ConnectionClosedError(`the daemon pool for ${this.socketPath} is closed`));
  }
}
