import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatHash, parseHash } from '../../daemon/core/hash.ts';
import { daemonSocket, instantiate, nixCli, nixCliResult, nonce, outputsOf, realise, scratchDir } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../bin/harmonia-ci.mjs', import.meta.url));

function harmonia(args: string[], env: NodeJS.ProcessEnv = { NIX_DAEMON_SOCKET_PATH: daemonSocket() }) {
  const result = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, NIX_DAEMON_SOCKET_PATH: undefined, ...env }, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('store path-info --json reports what nix path-info does, narHash in base32', () => {
  const { drv } = instantiate(`{ drv = sh "cli-info-${nonce()}" "echo info > $out"; }`, ['drv']);
  const [out] = realise(drv!);
  const run = harmonia(['store', 'path-info', '--json', out!, drv!]);
  assert.equal(run.status, 0, run.stderr);
  const ours = JSON.parse(run.stdout) as Array<Record<string, unknown>>;
  const theirs = JSON.parse(nixCli('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', out!]).toString()) as Array<
    Record<string, unknown>
  >;
  const mine = ours[0]!;
  assert.equal(mine.path, theirs[0]!.path);
  assert.equal(mine.narHash, formatHash(parseHash(theirs[0]!.narHash as string), 'base32'));
  assert.equal(mine.narHash, nixCli('nix-store', ['--query', '--hash', out!]).toString().trim());
  assert.equal(mine.narSize, theirs[0]!.narSize);
  assert.deepEqual(mine.references, theirs[0]!.references);
  assert.equal(mine.deriver, drv);
  assert.deepEqual(mine.signatures, []);
  assert.equal(ours[1]!.path, drv);
});

test('store path-info of an invalid path fails with a message naming it', () => {
  const absent = '/nix/store/00000000000000000000000000000000-absent';
  const run = harmonia(['store', 'path-info', absent]);
  assert.equal(run.status, 1);
  assert.ok(run.stderr.includes(absent), run.stderr);
});

test('store build streams the log, prints outputs and exits like nix-build', () => {
  const n = nonce();
  const { ok, fail } = instantiate(
    `{ ok = sh "cli-ok-${n}" "echo line-from-builder; echo done > $out"; fail = sh "cli-fail-${n}" "echo failing-line; exit 4"; }`,
    ['ok', 'fail'],
  );
  const built = harmonia(['store', 'build', ok!]);
  assert.equal(built.status, 0, built.stderr);
  assert.match(built.stderr, /line-from-builder/);
  assert.deepEqual(built.stdout.trim().split('\n'), outputsOf(ok!));
  assert.equal(nixCliResult('nix-store', ['--check-validity', ...outputsOf(ok!)]).status, 0);

  const failed = harmonia(['store', 'build', fail!]);
  assert.equal(failed.status, 100);
  assert.match(failed.stderr, /failing-line/);
  assert.match(failed.stderr, /exit code 4/);
});

test('store missing lists what would be built, like nix-store --realise --dry-run', () => {
  const n = nonce();
  const { top } = instantiate(`rec { a = sh "cli-m-a-${n}" "echo > $out"; top = sh "cli-m-top-${n}" "read x < \${a}; echo > $out"; }`, ['top']);
  const run = harmonia(['store', 'missing', '--json', top!]);
  assert.equal(run.status, 0, run.stderr);
  const missing = JSON.parse(run.stdout) as { willBuild: string[] };
  const dryRun = nixCliResult('nix-store', ['--realise', '--dry-run', top!]).stderr;
  const expected = dryRun.split('\n').filter((line) => line.startsWith('  /nix/store/')).map((line) => line.trim());
  assert.deepEqual([...missing.willBuild].sort(), expected.sort());
  const text = harmonia(['store', 'missing', top!]);
  assert.match(text.stdout, /will be built \(2\)/);
});

test('--socket wins over NIX_DAEMON_SOCKET_PATH, and a dead socket gets a message on how to start the daemon', () => {
  const dead = join(scratchDir(), 'nobody.sock');
  const viaEnv = harmonia(['store', 'path-info', '/nix/store/00000000000000000000000000000000-x'], { NIX_DAEMON_SOCKET_PATH: dead });
  assert.equal(viaEnv.status, 1);
  assert.ok(viaEnv.stderr.includes(dead), viaEnv.stderr);
  assert.match(viaEnv.stderr, /nix-daemon/);
  const viaOption = harmonia(['store', 'missing', '--socket', daemonSocket(), '/nix/store/00000000000000000000000000000000-x'], {
    NIX_DAEMON_SOCKET_PATH: dead,
  });
  assert.equal(viaOption.status, 0, viaOption.stderr);
  assert.match(viaOption.stdout, /unknown \(1\)/);
});
