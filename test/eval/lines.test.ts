/** The job stream's line format: attribute paths, nix-eval-jobs' own lines, and fields read from real `.drv` files. */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDerivation } from '../../daemon/core/derivation.ts';
import { AttrPathError, formatAttrPath, isEvalJobError, JobLineError, parseAttrPath, parseNixEvalJobsLine, type EvalJob } from '../../daemon/eval/index.ts';
import { AggregateResolver } from '../../daemon/eval/aggregates.ts';
import { jobFromDerivation, nixEvalJobsExtras, requiredSystemFeatures } from '../../daemon/eval/job-line.ts';
import { sourceArgs } from '../../daemon/eval/nix-eval-jobs.ts';
import { drvExpr, nix, nonce, tempSource, tool } from './support.ts';

// Verbatim from nix-community/nix-eval-jobs README.md ("Example", commit 1c51df3613e64e9165c99d21fd42b98a96d8a97f):
// `nix-eval-jobs --gc-roots-dir gcroot --flake 'github:NixOS/patchelf#hydraJobs'`.
const README_LINE_WITH_INPUTS =
  '{"attr":"patchelf-win32","attrPath":["patchelf-win32"],"drvPath":"/nix/store/s38l0fg5ja6j8qpws7slw2ws0c6v0qcf-patchelf-i686-w64-mingw32-0.18.0.drv","inputDrvs":{"/nix/store/6z1jfnqqgyqr221zgbpm30v91yfj3r45-bash-5.1-p16.drv":["out"],"/nix/store/b2p151ilwqpd47fbmzz50a5cmj12ixbf-hook.drv":["out"],"/nix/store/fbnhh18m4jh6cwa92am2sv3aqzjnzpdd-stdenv-linux.drv":["out"]},"name":"patchelf-i686-w64-mingw32-0.18.0","outputs":{"out":"/nix/store/w8r4h1xk71fryb99df8aszp83kfhw3bc-patchelf-i686-w64-mingw32-0.18.0"},"system":"x86_64-linux"}';
// Verbatim from an earlier nix-community/nix-eval-jobs README.md (patchelf 0.15.0 example, before inputDrvs existed).
const OLD_README_LINE =
  '{"attr":"coverage","attrPath":["coverage"],"drvPath":"/nix/store/8hq9f09xa5s6g9m02lw0sw59kkkvj57c-patchelf-coverage-0.15.0.drv","name":"patchelf-coverage-0.15.0","outputs":{"out":"/nix/store/dwf255bdbfvvbiqak941r83zlvxyipcs-patchelf-coverage-0.15.0"},"system":"x86_64-linux"}';
// No error line is printed in nix-eval-jobs' docs; this one has the shape src/worker.cc writes
// (reply = {attr, attrPath} plus "error", keys sorted by nlohmann::json) for the
// tests/assets/flake.nix attribute `brokenPkgs.brokenPackage = throw "this is an evaluation error"`
// that tests/test_eval.py (test_eval_error) evaluates.
const WORKER_ERROR_LINE = '{"attr":"brokenPackage","attrPath":["brokenPackage"],"error":"error: this is an evaluation error"}';

test('attribute paths split and join like nix-eval-jobs prints them', () => {
  assert.deepEqual(parseAttrPath('checks.x86_64-linux.app'), ['checks', 'x86_64-linux', 'app']);
  assert.deepEqual(parseAttrPath('hydraJobs."dotted.attr".x'), ['hydraJobs', 'dotted.attr', 'x']);
  assert.deepEqual(parseAttrPath(''), []);
  // tests/test_eval.py: the attribute named "dotted.attr" is reported as attr '"dotted.attr"'.
  assert.equal(formatAttrPath(['dotted.attr']), '"dotted.attr"');
  assert.equal(formatAttrPath(['recurse', 'drvB']), 'recurse.drvB');
  for (const bad of ['a..b', 'a.', '.a', '"a', 'a"b', '"a"b']) assert.throws(() => parseAttrPath(bad), AttrPathError, bad);
});

test('real nix-eval-jobs job lines parse with every field', () => {
  const current = parseNixEvalJobsLine(README_LINE_WITH_INPUTS);
  assert.ok(!('error' in current));
  assert.equal(current.attr, 'patchelf-win32');
  assert.deepEqual(current.attrPath, ['patchelf-win32']);
  assert.equal(current.drvPath, '/nix/store/s38l0fg5ja6j8qpws7slw2ws0c6v0qcf-patchelf-i686-w64-mingw32-0.18.0.drv');
  assert.equal(current.name, 'patchelf-i686-w64-mingw32-0.18.0');
  assert.equal(current.system, 'x86_64-linux');
  assert.deepEqual(current.outputs, { out: '/nix/store/w8r4h1xk71fryb99df8aszp83kfhw3bc-patchelf-i686-w64-mingw32-0.18.0' });
  assert.deepEqual(Object.keys(current.inputDrvs ?? {}), [
    '/nix/store/6z1jfnqqgyqr221zgbpm30v91yfj3r45-bash-5.1-p16.drv',
    '/nix/store/b2p151ilwqpd47fbmzz50a5cmj12ixbf-hook.drv',
    '/nix/store/fbnhh18m4jh6cwa92am2sv3aqzjnzpdd-stdenv-linux.drv',
  ]);

  const old = parseNixEvalJobsLine(OLD_README_LINE);
  assert.ok(!('error' in old));
  assert.equal(old.inputDrvs, undefined);
  assert.equal(old.outputs.out, '/nix/store/dwf255bdbfvvbiqak941r83zlvxyipcs-patchelf-coverage-0.15.0');

  const error = parseNixEvalJobsLine(WORKER_ERROR_LINE);
  assert.deepEqual(error, { attr: 'brokenPackage', attrPath: ['brokenPackage'], error: 'error: this is an evaluation error' });
});

test('malformed nix-eval-jobs lines are refused with the line quoted', () => {
  const withoutDrv = README_LINE_WITH_INPUTS.replace(/"drvPath":"[^"]*",/, '');
  assert.throws(() => parseNixEvalJobsLine(withoutDrv), (e: unknown) => e instanceof JobLineError && e.line === withoutDrv);
  assert.throws(() => parseNixEvalJobsLine(README_LINE_WITH_INPUTS.replace('/nix/store/s38l', '/tmp/s38l')), JobLineError);
  assert.throws(() => parseNixEvalJobsLine(OLD_README_LINE.slice(0, 40)), /invalid JSON/);
  assert.throws(() => parseNixEvalJobsLine('{"attr":"x","error":"boom"}'), /malformed error line/);
});

test('a job line built from a real .drv carries its outputs, system, features and inputs', async () => {
  const n = nonce();
  const dir = await tempSource({
    'drv.nix': `let
      dep = builtins.derivation { name = "dep-${n}"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; };
    in {
      plain = builtins.derivation {
        name = "plain-${n}"; system = "aarch64-linux"; builder = "/bin/sh";
        requiredSystemFeatures = [ "kvm" "big-parallel" ]; inherit dep; devDep = dep.dev;
      };
      structured = builtins.derivation {
        name = "structured-${n}"; system = "x86_64-linux"; builder = "/bin/sh";
        __structuredAttrs = true; requiredSystemFeatures = [ "benchmark" ];
      };
    }`,
  });
  try {
    const [plainPath = '', structuredPath = ''] = (await tool('nix-instantiate', [join(dir, 'drv.nix'), '-A', 'plain', '-A', 'structured'])).trim().split('\n');
    const shown = JSON.parse(await nix('show-derivation', plainPath)) as Record<string, { inputDrvs: Record<string, string[]>; outputs: Record<string, { path: string }> }>;
    const oracle = shown[plainPath];
    assert.ok(oracle, 'nix show-derivation describes the derivation');

    const drv = parseDerivation(await readFile(plainPath, 'utf8'));
    const line = jobFromDerivation(['jobs', 'plain'], plainPath, `plain-${n}`, drv);
    assert.ok(!('error' in line), 'an input-addressed derivation is a job');
    assert.equal(line.attr, 'jobs.plain');
    assert.equal(line.system, 'aarch64-linux');
    assert.deepEqual(line.requiredSystemFeatures, ['kvm', 'big-parallel']);
    assert.deepEqual(line.inputDrvs, oracle.inputDrvs);
    assert.deepEqual(line.outputs, Object.fromEntries(Object.entries(oracle.outputs).map(([name, o]) => [name, o.path])));

    const structured = parseDerivation(await readFile(structuredPath, 'utf8'));
    assert.deepEqual(requiredSystemFeatures(structured), ['benchmark']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the expression handed to nix-eval-jobs for an attribute of a file selects what nix-instantiate -A does', async () => {
  const n = nonce();
  const dir = await tempSource({ 'jobs.nix': `{ }: { "ci.x" = { inner = ${drvExpr(`inner-${n}`)}; }; }` });
  try {
    const file = join(dir, 'jobs.nix');
    assert.deepEqual(sourceArgs({ kind: 'file', path: file }, []), [file]);
    assert.deepEqual(sourceArgs({ kind: 'flake', ref: 'github:NixOS/patchelf' }, ['hydraJobs']), ['--flake', 'github:NixOS/patchelf#hydraJobs']);
    const [flag, expr = ''] = sourceArgs({ kind: 'file', path: file }, ['ci.x']);
    assert.equal(flag, '--expr');
    const selected = JSON.parse(await nix('eval', '--impure', '--json', '--expr', `(${expr}).inner.drvPath`)) as string;
    assert.equal(selected, (await tool('nix-instantiate', [file, '-A', '"ci.x".inner'])).trim());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('nix-eval-jobs aggregate lines carry meta and constituents, resolved by drv path and by name', () => {
  // The shape nix-eval-jobs' src/drv.cc writes with `--meta --constituents` (meta as toJSON of the
  // job's `meta`, nixpkgs' maintainer and license attribute sets included).
  const drv = (name: string): string => `/nix/store/${'a'.repeat(31)}${name.length}-${name}.drv`;
  const out = (name: string): Record<string, string> => ({ out: `/nix/store/${'b'.repeat(31)}${name.length}-${name}` });
  const aggregateLine = parseNixEvalJobsLine(
    JSON.stringify({
      attr: 'release', attrPath: ['release'], drvPath: drv('release'), name: 'release', system: 'x86_64-linux', outputs: out('release'),
      meta: { description: 'the release', maintainers: [{ name: 'Ann', github: 'ann' }, 'bob@example.org'], license: { spdxId: 'MIT' }, timeout: 120, maxSilent: 30.5 },
      constituents: [drv('unit')], namedConstituents: ['tests.x86_64-linux.int', 'tests.nope'],
    }),
  );
  assert.ok(!('error' in aggregateLine));
  const extras = nixEvalJobsExtras(aggregateLine);
  assert.deepEqual(extras.meta, { description: 'the release', maintainers: ['Ann', 'bob@example.org'], license: ['MIT'], timeout: 120, maxSilent: 31 });
  assert.deepEqual(extras.aggregate, { drvs: [drv('unit')], names: ['tests.x86_64-linux.int', 'tests.nope'] });

  const job = (attr: string, extra: object = {}): EvalJob => ({
    attr, attrPath: parseAttrPath(attr), drvPath: drv(attr), name: attr, system: 'x86_64-linux', outputs: out(attr), requiredSystemFeatures: [], inputDrvs: {}, ...extra,
  });
  const resolver = new AggregateResolver([['hydraJobs']]);
  assert.equal(resolver.observe({ ...job('hydraJobs.tests.x86_64-linux.unit'), drvPath: drv('unit') }), false);
  assert.equal(resolver.observe(job('hydraJobs.tests.x86_64-linux.int')), false);
  assert.equal(resolver.observe(job('hydraJobs.release', { drvPath: drv('release'), aggregate: { drvs: [drv('unit')], names: ['tests.x86_64-linux.int'] } })), true);
  assert.equal(resolver.observe(job('hydraJobs.broken-release', { aggregate: extras.aggregate })), true);
  const [broken, release] = resolver.resolve();
  assert.ok(release && !isEvalJobError(release));
  assert.equal(release.aggregate, undefined);
  assert.deepEqual(release.constituents, [
    { attr: 'hydraJobs.tests.x86_64-linux.int', drvPath: drv('hydraJobs.tests.x86_64-linux.int') },
    { attr: 'hydraJobs.tests.x86_64-linux.unit', drvPath: drv('unit') },
  ]);
  assert.ok(broken && isEvalJobError(broken));
  assert.match(broken.error, /constituent 'tests\.nope' names no job of this evaluation/);
});
