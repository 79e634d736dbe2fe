/** Typed errors of the nix-daemon worker-protocol client. */
import { formatProtocolVersion } from './version.ts';

/** Base class: every error thrown by daemon/protocol is a ProtocolLayerError. */
export class ProtocolLayerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The daemon sent bytes that do not fit the protocol: the connection is out of step and must be dropped. */
export class ProtocolError extends ProtocolLayerError {}

/** The socket closed or failed mid-conversation; the connection is unusable and the pool replaces it. */
export class ConnectionClosedError extends ProtocolLayerError {}

/** Nothing listens on the daemon socket. */
export class DaemonNotRunningError extends ProtocolLayerError {
  constructor(
    readonly socketPath: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `cannot connect to the nix-daemon at ${socketPath} (${reason}): start it with ` +
        `'NIX_DAEMON_SOCKET_PATH=${socketPath} nix-daemon' (or 'systemctl start nix-daemon' for the system socket), ` +
        `or point --socket / NIX_DAEMON_SOCKET_PATH at a running daemon`,
      { cause },
    );
  }
}

/** The daemon speaks a worker-protocol version this client cannot talk to. */
export class UnsupportedProtocolVersionError extends ProtocolLayerError {
  constructor(
    readonly daemonVersion: number,
    readonly minimumVersion: number,
    readonly clientVersion: number,
  ) {
    super(
      `the nix-daemon speaks worker protocol ${formatProtocolVersion(daemonVersion)}, but this client needs ` +
        `${formatProtocolVersion(minimumVersion)} or newer (it speaks up to ${formatProtocolVersion(clientVersion)}): ` +
        `upgrade the daemon to Nix 2.8 or later`,
    );
  }
}

/** An operation needs a store path that is not valid in the daemon's store. */
export class InvalidPathError extends ProtocolLayerError {
  constructor(readonly path: string) {
    super(`path '${path}' is not valid in the nix-daemon's store: build or substitute it first`);
  }
}

/** One frame of the trace the daemon attaches to an error. */
export interface DaemonErrorTrace {
  hint: string;
}

/** An error the daemon reported for one operation (STDERR_ERROR). */
export class DaemonError extends ProtocolLayerError {
  constructor(
    readonly daemonMessage: string,
    readonly level: number,
    readonly traces: readonly DaemonErrorTrace[],
    readonly exitStatus?: number,
  ) {
    super(`nix-daemon: ${stripAnsi(daemonMessage)}${traces.map((t) => `\n  … ${stripAnsi(t.hint)}`).join('')}`);
  }
}

/** Nix colours its messages with ANSI escapes; a stored or logged error should not carry them. */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}
