/**
 * A private nix-daemon for tests: it serves the machine's /nix/store on a socket of our
 * own (NIX_DAEMON_SOCKET_PATH), so tests exercise the daemon protocol without touching
 * a system daemon, and builds never wait on the closed network.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describeExit, spawnManaged } from '../../lib/managed-process.ts';
import { locateTool } from '../../lib/tools.ts';

export interface TestNixDaemon {
  socketPath: string;
  stop(): Promise<void>;
}

// The first words of the worker protocol handshake (nix/src/libstore/worker-protocol.hh).
const WORKER_MAGIC_1 = 0x6e697863n;
const WORKER_MAGIC_2 = 0x6478696fn;

/** Options every nix command in the test suite needs here: root without build users, no network. */
export const NIX_TEST_OPTIONS = ['--option', 'build-users-group', '', '--option', 'substituters', '', '--option', 'sandbox', 'false'] as const;

/** True when a nix-daemon answers the protocol handshake on `socketPath`. */
export function daemonAnswers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    let received = Buffer.alloc(0);
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      const hello = Buffer.alloc(8);
      hello.writeBigUInt64LE(WORKER_MAGIC_1);
      socket.write(hello);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 8) done(received.readBigUInt64LE(0) === WORKER_MAGIC_2);
    });
  });
}

/** Starts `nix-daemon` on `<dir>/daemon.sock` and resolves once it answers the handshake. */
export async function startNixDaemon(options: { dir: string; startTimeoutMs?: number }): Promise<TestNixDaemon> {
  const installHint = 'install Nix with `npm run bootstrap` (Debian package nix-bin) or put nix-daemon on PATH';
  const daemon = locateTool({ name: 'nix-daemon', installHint });
  const socketPath = join(options.dir, 'daemon.sock');
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const env: NodeJS.ProcessEnv = { ...process.env, NIX_DAEMON_SOCKET_PATH: socketPath };
  // A daemon started by systemd socket activation would take these to mean "use fd 3".
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.NIX_REMOTE;
  const child = spawnManaged(daemon, [...NIX_TEST_OPTIONS], { env });
  const stop = async (): Promise<void> => {
    await child.stop(2000);
    await rm(socketPath, { force: true });
  };

  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(socketPath) && (await daemonAnswers(socketPath)))) {
    if (child.hasExited() || Date.now() > deadline) {
      const why = child.hasExited() ? describeExit(await child.exited) : `did not answer on ${socketPath} within ${timeoutMs} ms`;
      await stop();
      throw new Error(`nix-daemon (${daemon}) ${why}. Last output:\n${child.recentOutput(15) || '(none)'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { socketPath, stop };
}
