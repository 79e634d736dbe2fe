/**
 * The bundled example through the built-in evaluator, checked against the real Nix:
 * drvPaths from `nix eval …drvPath` and `nix-instantiate`, the rest from `nix show-derivation`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parseRepoConfig } from '../../config/repo.ts';
import { collect, nix, nonce, OFFLINE_NIX_OPTIONS, tempSource, tool } from './support.ts';

const EXAMPLES = resolve(import.meta.dirname, '../../examples');
const JOB_NAMES = ['app', 'docs', 'flaky-test', 'greeting', 'library', 'release'];
const SYSTEMS = ['aarch64-linux', 'x86_64-linux'];

interface ShownDerivation {
  outputs: Record<string, { path: string }>;
  inputDrvs: Record<string, string[]>;
  system: string;
}

test('the example flake evaluates to the derivations Nix itself computes', async () => {
  const flake = `path:${EXAMPLES}`;
  const { jobs, errors } = await collect({ source: { kind: 'flake', ref: flake }, workers: 2 });
  assert.equal(errors.size, 0, JSON.stringify([...errors.values()]));
  const expected = SYSTEMS.flatMap((system) => JOB_NAMES.map((name) => `checks.${system}.${name}`)).sort();
  assert.deepEqual([...jobs.keys()].sort(), expected);

  for (const [attr, job] of jobs) {
    assert.equal(job.drvPath, await nix('eval', '--raw', `${flake}#${attr}.drvPath`), `${attr}: drvPath`);
    const shown = (JSON.parse(await nix('show-derivation', job.drvPath)) as Record<string, ShownDerivation>)[job.drvPath];
    assert.ok(shown, `${attr}: nix show-derivation knows ${job.drvPath}`);
    assert.deepEqual(job.inputDrvs, shown.inputDrvs, `${attr}: inputDrvs`);
    assert.deepEqual(job.outputs, { out: shown.outputs.out?.path }, `${attr}: outputs`);
    assert.equal(job.system, shown.system, `${attr}: system`);
    assert.equal(job.system, job.attrPath[1]);
    assert.equal(job.name, job.attrPath[2]);
    assert.deepEqual(job.requiredSystemFeatures, []);
  }

  // The graph the README describes: release needs app and the failing test.
  const x86 = (name: string): string => jobs.get(`checks.x86_64-linux.${name}`)?.drvPath ?? '';
  assert.deepEqual(Object.keys(jobs.get('checks.x86_64-linux.release')?.inputDrvs ?? {}).sort(), [x86('app'), x86('flaky-test')].sort());
  assert.deepEqual(Object.keys(jobs.get('checks.x86_64-linux.app')?.inputDrvs ?? {}).sort(), [x86('greeting'), x86('library')].sort());
  assert.deepEqual(Object.keys(jobs.get('checks.x86_64-linux.docs')?.inputDrvs ?? {}), []);
});

test('examples/jobs.nix evaluates to what nix-instantiate produces, the same jobs as the flake', async () => {
  const file = join(EXAMPLES, 'jobs.nix');
  const { jobs, errors } = await collect({ source: { kind: 'file', path: file }, workers: 2 });
  assert.equal(errors.size, 0);
  assert.deepEqual([...jobs.keys()].sort(), JOB_NAMES);
  const instantiated = (await tool('nix-instantiate', [file, ...JOB_NAMES.flatMap((name) => ['-A', name])])).trim().split('\n');
  assert.deepEqual(JOB_NAMES.map((name) => jobs.get(name)?.drvPath), instantiated);

  const currentSystem = JSON.parse(await nix('eval', '--impure', '--json', '--expr', 'builtins.currentSystem')) as string;
  if (SYSTEMS.includes(currentSystem)) {
    const flakeDrv = await nix('eval', '--raw', `path:${EXAMPLES}#checks.${currentSystem}.app.drvPath`);
    assert.equal(jobs.get('app')?.drvPath, flakeDrv, 'the file and the flake define the same jobs');
  }
});

test('the example .harmonia-ci.toml is a valid repository configuration', async () => {
  const config = parseRepoConfig(await readFile(join(EXAMPLES, '.harmonia-ci.toml'), 'utf8'), '.harmonia-ci.toml');
  assert.deepEqual(config.attrs, ['checks']);
  assert.equal(config.allowIfd, undefined, 'the project decides import-from-derivation');
  assert.equal(config.evalTimeout, 10 * 60_000);
});

test('building the example shows successes, a readable failure and a dependent that cannot build', async () => {
  // A salted copy, so these builds never share outputs with other runs of the example.
  const dir = await tempSource({}, 'example');
  try {
    await cp(EXAMPLES, dir, { recursive: true });
    const jobsFile = join(dir, 'jobs.nix');
    const original = await readFile(jobsFile, 'utf8');
    const salted = original.replace('inherit name system;', `inherit name system; salt = "${nonce()}";`);
    assert.notEqual(salted, original, 'jobs.nix still has the line the salt is added to');
    await writeFile(jobsFile, salted);

    const attrs = ['greeting', 'docs', 'app', 'release'].map((name) => `path:${dir}#checks.x86_64-linux.${name}`);
    const args = ['--extra-experimental-features', 'nix-command flakes', ...Object.entries(OFFLINE_NIX_OPTIONS).flatMap(([k, v]) => ['--option', k, v])];
    const failure = await promisify(execFile)('nix', [...args, 'build', '--no-link', '--keep-going', '-L', ...attrs]).then(
      () => undefined,
      (error: unknown) => error as { stderr: string },
    );
    assert.ok(failure, 'the build of release fails');
    assert.match(failure.stderr, /\[greeting\] wrote the greeting/);
    assert.match(failure.stderr, /\[app\] app built/);
    assert.match(failure.stderr, /\[docs\] docs rendered/);
    assert.match(failure.stderr, /test mirror-latency \.\.\. FAILED/);
    assert.match(failure.stderr, /fails on purpose to show a failed build/);
    assert.match(failure.stderr, /dependencies of derivation '[^']*-release\.drv' failed to build/);
    assert.doesNotMatch(failure.stderr, /\[release\] packaging/, 'release never starts');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
