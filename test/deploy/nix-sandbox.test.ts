/**
 * Builds in Nix's sandbox on a plain Debian host, as the README's "Adding a builder host" sets it
 * up: its nix.conf edits applied to Debian's shipped nix.conf, a nix-daemon reading the result,
 * and the README's own check command, which succeeds only inside a sandbox (it fails with the
 * sandbox off, so it tells the two apart).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { daemonAnswers } from '../../lib/nix-daemon.ts';
import { spawnManaged, type ManagedProcess } from '../../lib/managed-process.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';

/** The README's builder-host block, from its nix.conf edits to the end of the heredoc. */
function readmeSetup(readme: string): { edits: string; check: string } {
  const section = readme.slice(readme.indexOf('### Adding a builder host'));
  const edits = /^sed -i 's\/\^sandbox = false\$\/sandbox = true\/' \/etc\/nix\/nix\.conf\n[\s\S]*?^CONF$/m.exec(section)?.[0];
  assert.ok(edits, "the README's builder host does not turn the sandbox on in /etc/nix/nix.conf");
  const check = /^nix-build --no-out-link -E 'derivation \{ name = "sandbox-check";.*$/m.exec(section)?.[0];
  assert.ok(check, "the README gives no command that checks the sandbox");
  return { edits, check };
}

describe('Nix sandbox on a builder host, as the README sets it up', () => {
  let dir: string;
  let daemon: ManagedProcess;
  let clientEnv: NodeJS.ProcessEnv;
  let check: string;

  before(async () => {
    assert.ok(existsSync('/bin/busybox'), 'the sandbox shell /bin/busybox is missing: apt-get install busybox-static (npm run bootstrap does)');
    const setup = readmeSetup(await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8'));
    check = setup.check;
    dir = await mkdtemp(join(tmpdir(), 'hci-nix-sandbox-'));
    const conf = join(dir, 'nix.conf');
    // Debian's nix.conf (nix-setup-systemd) says `sandbox = false`; without it, Nix's defaults.
    if (existsSync('/etc/nix/nix.conf')) await copyFile('/etc/nix/nix.conf', conf);
    else await writeFile(conf, 'sandbox = false\n');
    await execa('sh', ['-e', '-c', setup.edits.replaceAll('/etc/nix/nix.conf', conf)]);
    const text = await readFile(conf, 'utf8');
    assert.match(text, /^sandbox = true$/m, 'the README edits left the sandbox off');
    // Offline, and the build users of nix-setup-systemd where the machine has them; root builds
    // in the sandbox without them just as well, which is what is checked here.
    const users = await execa('getent', ['group', 'nixbld'], { reject: false });
    await writeFile(conf, `${text}substituters =\n${users.exitCode === 0 ? '' : 'build-users-group =\n'}`);
    const socket = join(dir, 'daemon.sock');
    const env: NodeJS.ProcessEnv = { ...process.env, NIX_CONF_DIR: dir, NIX_DAEMON_SOCKET_PATH: socket };
    delete env.NIX_REMOTE;
    delete env.NIX_CONFIG;
    daemon = spawnManaged('nix-daemon', [], { env });
    const deadline = Date.now() + 10_000;
    while (!(existsSync(socket) && (await daemonAnswers(socket)))) {
      assert.ok(!daemon.hasExited() && Date.now() < deadline, `nix-daemon did not start:\n${daemon.recentOutput(15)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    clientEnv = { ...env, NIX_REMOTE: 'daemon' };
  });

  after(async () => {
    await daemon?.stop(2000);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("builds the README's check in the sandbox", async () => {
    const result = await execa('sh', ['-c', check], { env: clientEnv, reject: false });
    assert.equal(result.exitCode, 0, `the check failed in the sandbox:\n${result.stderr}`);
    assert.match(result.stdout.trim(), /^\/nix\/store\/[0-9a-z]{32}-sandbox-check$/);
  });

  it('fails the same check with the sandbox off: it tells the two apart', async () => {
    // The check's derivation is named by builtins.currentTime: a new second makes a new one, not
    // the output the previous test built.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const result = await execa('sh', ['-c', `${check} --option sandbox false`], { env: clientEnv, reject: false });
    assert.notEqual(result.exitCode, 0, 'the check passed without a sandbox');
    assert.match(result.stderr, /sandbox-check\.drv' failed with exit code 1/);
  });
});
