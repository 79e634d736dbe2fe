import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { DaemonConnection } from '../../daemon/protocol/connection.ts';
import { DaemonNotRunningError, UnsupportedProtocolVersionError } from '../../daemon/protocol/errors.ts';
import { DEFAULT_DAEMON_SOCKET, resolveSocketPath } from '../../daemon/protocol/pool.ts';
import { CLIENT_PROTOCOL_VERSION, MINIMUM_PROTOCOL_VERSION, negotiateProtocolVersion } from '../../daemon/protocol/version.ts';
import { daemonSocket, scratchDir } from './helpers.ts';

test('handshake with the real daemon negotiates the lower version and learns its Nix version', async () => {
  const connection = await DaemonConnection.open(daemonSocket());
  try {
    // `nix-daemon --version` prints "nix-daemon (Nix) 2.8.0".
    const cliVersion = execFileSync('nix-daemon', ['--version']).toString().trim().split(' ').at(-1);
    assert.equal(connection.daemonNixVersion, cliVersion);
    assert.ok(connection.protocolVersion >= MINIMUM_PROTOCOL_VERSION);
    assert.ok(connection.protocolVersion <= CLIENT_PROTOCOL_VERSION);
    if (cliVersion === '2.8.0') assert.equal(connection.protocolVersion, (1 << 8) | 34);
  } finally {
    connection.close();
  }
});

test('version negotiation takes the lower version and refuses other majors and pre-2.8 daemons', () => {
  assert.equal(negotiateProtocolVersion((1 << 8) | 34), (1 << 8) | 34);
  assert.equal(negotiateProtocolVersion((1 << 8) | 38), CLIENT_PROTOCOL_VERSION);
  assert.equal(negotiateProtocolVersion((1 << 8) | 21), undefined);
  assert.equal(negotiateProtocolVersion((2 << 8) | 0), undefined);
});

test('a daemon speaking an unsupported version is refused with both versions named', async () => {
  // No pre-2.8 nix-daemon is installed here, so a peer that answers the greeting as Nix 2.3 does
  // (protocol 1.21) stands in for one: only the handshake's first reply matters.
  const socketPath = join(scratchDir(), 'old.sock');
  const server = createServer((socket) => {
    socket.once('data', () => {
      const reply = Buffer.alloc(16);
      reply.writeBigUInt64LE(0x6478696fn, 0);
      reply.writeBigUInt64LE(BigInt((1 << 8) | 21), 8);
      socket.write(reply);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    await assert.rejects(DaemonConnection.open(socketPath), (error: unknown) => {
      assert.ok(error instanceof UnsupportedProtocolVersionError);
      assert.match(error.message, /1\.21/);
      assert.match(error.message, /1\.34/);
      return true;
    });
  } finally {
    server.close();
  }
});

test('no daemon on the socket: the error names the socket and how to start the daemon', async () => {
  const missing = join(scratchDir(), 'absent.sock');
  await assert.rejects(DaemonConnection.open(missing), (error: unknown) => {
    assert.ok(error instanceof DaemonNotRunningError);
    assert.ok(error.message.includes(missing));
    assert.match(error.message, /nix-daemon/);
    return true;
  });
  // A stale socket file nobody listens on is the usual leftover of a crashed daemon.
  const stale = join(scratchDir(), 'stale.sock');
  writeFileSync(stale, '');
  await assert.rejects(DaemonConnection.open(stale), DaemonNotRunningError);
});

test('the socket path comes from the option, then NIX_DAEMON_SOCKET_PATH, then the system default', () => {
  assert.equal(resolveSocketPath('/x/sock', { NIX_DAEMON_SOCKET_PATH: '/y/sock' }), '/x/sock');
  assert.equal(resolveSocketPath(undefined, { NIX_DAEMON_SOCKET_PATH: '/y/sock' }), '/y/sock');
  assert.equal(resolveSocketPath(undefined, {}), DEFAULT_DAEMON_SOCKET);
});
