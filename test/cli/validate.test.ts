/**
 * `harmonia-ci validate` as a user runs it: a wrong `.harmonia-ci.toml` is named with its key; a
 * jobset is evaluated and each job reported as cached (its outputs already in the store) or to
 * build, without building anything; an attribute that fails makes the exit status 1. `run
 * --dry-run` makes the same check.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../lib/tools.ts';

describe('harmonia-ci validate', () => {
  let dir: string;
  const nonce = randomUUID();
  const cli = (command: string, args: string[]) =>
    execa('node', [join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs'), command, ...args], {
      reject: false,
      env: { ...process.env, HARMONIA_CI_STATE_DIR: join(dir, 'state') },
    });
  const run = (args: string[]) => cli('validate', args);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hci-validate-'));
    const job = (name: string) => `${name} = builtins.derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${nonce} > $out" ]; };`;
    await writeFile(join(dir, 'jobs.nix'), `{\n  ${job('built')}\n  ${job('fresh')}\n  broken = throw "broken on purpose";\n}\n`);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('reports cached and to-build jobs and a failing attribute, without building', async () => {
    const built = await execa('nix-build', ['--option', 'build-users-group', '', '--option', 'substituters', '', '--no-out-link', join(dir, 'jobs.nix'), '-A', 'built']);
    const result = await run([join(dir, 'jobs.nix'), '--json']);
    assert.equal(result.exitCode, 1, result.stderr);
    assert.ok(result.stdout, `no report: ${result.stderr}`);
    const report = JSON.parse(result.stdout) as { jobs: Array<{ attr: string; status: string; drvPath: string }>; errors: Array<{ attr: string; error: string }> };
    assert.deepEqual(Object.fromEntries(report.jobs.map((job) => [job.attr, job.status])), { built: 'cached', fresh: 'to build' });
    assert.deepEqual(report.errors.map((error) => error.attr), ['broken']);
    assert.match(report.errors[0]!.error, /broken on purpose/);
    const fresh = report.jobs.find((job) => job.attr === 'fresh')!;
    const outputs = await execa('nix-store', ['--query', '--outputs', fresh.drvPath]);
    const valid = await execa('nix-store', ['--check-validity', outputs.stdout.trim()], { reject: false });
    assert.notEqual(valid.exitCode, 0, 'validate built nothing');
    assert.ok(built.stdout.trim().startsWith('/nix/store/'));

    const text = await run([join(dir, 'jobs.nix'), '-A', 'built', '-A', 'fresh']);
    assert.equal(text.exitCode, 0, text.stderr);
    assert.match(text.stdout, /^cached +built /m);
    assert.match(text.stdout, /^to build +fresh /m);
    assert.match(text.stdout, /2 job\(s\): 1 to build, 1 cached; 0 attribute\(s\) failed/);
  });

  it('is what `run --dry-run` does: the same report and exit status, no services started, nothing built', async () => {
    const stateDir = join(dir, 'dry-run-state');
    const result = await cli('run', [join(dir, 'jobs.nix'), '--dry-run', '--json', '--state-dir', stateDir, '--no-ui']);
    assert.equal(result.exitCode, 1, result.stderr);
    const report = JSON.parse(result.stdout) as { jobs: Array<{ attr: string; status: string; drvPath: string }>; errors: Array<{ attr: string }> };
    assert.deepEqual(Object.fromEntries(report.jobs.map((job) => [job.attr, job.status])), { built: 'cached', fresh: 'to build' });
    assert.deepEqual(report.errors.map((error) => error.attr), ['broken']);
    const fresh = report.jobs.find((job) => job.attr === 'fresh')!;
    const outputs = await execa('nix-store', ['--query', '--outputs', fresh.drvPath]);
    assert.notEqual((await execa('nix-store', ['--check-validity', outputs.stdout.trim()], { reject: false })).exitCode, 0, 'run --dry-run built nothing');
    assert.deepEqual(await readdir(stateDir).catch(() => []), [], 'no Temporal, database or cache was started');

    await writeFile(join(dir, '.harmonia-ci.toml'), 'statuses = "some"\n');
    const wrong = await cli('run', [dir, '--dry-run', '--state-dir', stateDir]);
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.stderr, /\.harmonia-ci\.toml: statuses: expected one of "summary", "failures", "all", got "some"/);
    await rm(join(dir, '.harmonia-ci.toml'));
  });

  it('names the key of a wrong .harmonia-ci.toml and what it expects', async () => {
    await writeFile(join(dir, '.harmonia-ci.toml'), 'allow-ifd = "yes"\n');
    // Read from the root of a directory source, as CI reads it.
    const result = await run([dir]);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /\.harmonia-ci\.toml: allow-ifd/);
    assert.match(result.stderr, /true or false|boolean/);
    await rm(join(dir, '.harmonia-ci.toml'));
  });
});
