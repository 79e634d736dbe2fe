/**
 * Round trip through the private nix-daemon started by test/run.ts: it answers the worker
 * protocol handshake on its socket, and the real nix-build / nix-store, talking to it
 * with `--store daemon`, build a fresh derivation whose output then is valid in the store.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { requireEnv } from '../helpers/env.ts';
import { daemonAnswers, LOCAL_DAEMON_OPTIONS as NIX_TEST_OPTIONS } from '../../lib/nix-daemon.ts';

const socketPath = requireEnv('NIX_DAEMON_SOCKET_PATH');

/** Runs a nix command against our daemon only: NIX_REMOTE unset, the socket from the environment. */
async function nix(command: string, args: string[]): Promise<string> {
  const env = { ...process.env, NIX_DAEMON_SOCKET_PATH: socketPath, NIX_REMOTE: undefined };
  const result = await execa(command, ['--store', 'daemon', ...NIX_TEST_OPTIONS, ...args], { env, extendEnv: false, timeout: 60_000 });
  return result.stdout.trim();
}

describe('private nix-daemon', () => {
  it('answers the worker protocol handshake on its socket', async () => {
    assert.equal(await daemonAnswers(socketPath), true);
  });

  it('is what `--store daemon` reaches: without it the same command fails', async () => {
    const env = { ...process.env, NIX_DAEMON_SOCKET_PATH: `${socketPath}.absent`, NIX_REMOTE: undefined };
    await assert.rejects(
      execa('nix-store', ['--store', 'daemon', ...NIX_TEST_OPTIONS, '-q', '--hash', '/nix/store/00000000000000000000000000000000-x'], { env, extendEnv: false }),
      /cannot connect to socket/,
    );
  });

  it('builds a unique derivation whose output becomes valid', async () => {
    const nonce = randomUUID();
    const expression = `derivation {
      name = "harmonia-daemon-test";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      args = [ "-c" "echo ${nonce} > $out" ];
    }`;
    const output = await nix('nix-build', ['--no-out-link', '-E', expression]);
    assert.match(output, /^\/nix\/store\/[0-9a-z]{32}-harmonia-daemon-test$/);
    assert.equal(await readFile(output, 'utf8'), `${nonce}\n`);

    // The daemon now reports the path valid, with the NAR hash of what it built.
    assert.equal(await nix('nix-store', ['--check-validity', '--print-invalid', output]), '');
    assert.match(await nix('nix-store', ['-q', '--hash', output]), /^sha256:[0-9a-z]{52}$/);
  });

  it('fails a build through the daemon when the builder fails', async () => {
    const expression = `derivation {
      name = "harmonia-daemon-fail-${randomUUID().slice(0, 8)}";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      args = [ "-c" "echo failing on purpose >&2; exit 3" ];
    }`;
    await assert.rejects(nix('nix-build', ['--no-out-link', '-E', expression]), /failing on purpose/);
  });
});
