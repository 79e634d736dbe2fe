/**
 * Which failures stay with one attribute and which fail the evaluation, how attribute sets are
 * entered, and how flake sources (plain directories, git repositories) are read — all with the real Nix.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { EvaluationFailedError } from '../../daemon/eval/index.ts';
import { collect, drvExpr, nix, nonce, tempSource, tool } from './support.ts';

const FLAKE_PREFIX = '{ outputs = { self }: ';

test('a broken attribute becomes an error line while the others evaluate', async () => {
  const n = nonce();
  const dir = await tempSource({
    'jobs.nix': `{ }: {
      good = ${drvExpr(`good-${n}`)};
      thrown = throw "thrown on purpose ${n}";
      missing = { }.nope;
      asserted = assert false; ${drvExpr(`asserted-${n}`)};
      badInput = ${drvExpr(`bad-input-${n}`, 'dep = 1 + "x";')};
      "dotted.name" = ${drvExpr(`dotted-${n}`)};
      nested = { recurseForDerivations = true; inner = ${drvExpr(`inner-${n}`)}; broken = { }.gone; };
      hidden = { notEntered = ${drvExpr(`hidden-${n}`)}; };
      number = 42;
    }`,
  });
  try {
    const file = join(dir, 'jobs.nix');
    const { jobs, errors } = await collect({ source: { kind: 'file', path: file }, workers: 2 });
    assert.deepEqual([...jobs.keys()].sort(), ['"dotted.name"', 'good', 'nested.inner']);
    assert.deepEqual([...errors.keys()].sort(), ['asserted', 'badInput', 'missing', 'nested.broken', 'thrown']);
    assert.match(errors.get('thrown')?.error ?? '', new RegExp(`thrown on purpose ${n}`));
    assert.match(errors.get('missing')?.error ?? '', /attribute 'nope' missing/);
    assert.match(errors.get('asserted')?.error ?? '', /assertion .*failed/);
    assert.match(errors.get('badInput')?.error ?? '', /cannot add a string to an integer/);
    assert.match(errors.get('nested.broken')?.error ?? '', /attribute 'gone' missing/);
    assert.deepEqual(jobs.get('"dotted.name"')?.attrPath, ['dotted.name']);
    assert.equal(jobs.get('good')?.drvPath, (await tool('nix-instantiate', [file, '-A', 'good'])).trim());
    assert.equal(jobs.get('nested.inner')?.drvPath, (await tool('nix-instantiate', [file, '-A', 'nested.inner'])).trim());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('jobs whose derivation fails past tryEval get error lines of their own, however the jobs are split between processes', async () => {
  // 23 jobs; two break only when instantiated (an error tryEval cannot catch), so the walk works and
  // the processes holding them fail: their ranges are halved until each broken job is alone.
  const n = nonce();
  const names = Array.from({ length: 23 }, (_, i) => `j${String(i).padStart(2, '0')}`);
  const broken = new Set(['j04', 'j17']);
  const dir = await tempSource({
    'jobs.nix': `{
      shared = ${drvExpr(`shared-${n}`)};
      ${names.map((name) => `${name} = ${drvExpr(`${name}-${n}`, broken.has(name) ? 'dep = 1 + "x";' : `dep = (import ./jobs.nix).shared;`)};`).join('\n      ')}
    }`,
  });
  try {
    const file = join(dir, 'jobs.nix');
    const expected = (await tool('nix-instantiate', [file, ...names.filter((name) => !broken.has(name)).flatMap((name) => ['-A', name])])).trim().split('\n');
    // Two processes of at most 5 jobs each, then ranges of 5 for the rest; and one process for all.
    for (const options of [{ workers: 2, maxJobsPerProcess: 5 }, { workers: 1 }]) {
      const { jobs, errors, lines } = await collect({ source: { kind: 'file', path: file }, ...options });
      assert.equal(lines.length, 24, `one line per attribute (${JSON.stringify(options)})`);
      assert.deepEqual([...errors.keys()].sort(), [...broken]);
      for (const name of broken) assert.match(errors.get(name)?.error ?? '', /cannot add a string to an integer/);
      assert.deepEqual(
        names.filter((name) => !broken.has(name)).map((name) => jobs.get(name)?.drvPath),
        expected,
        'every other job has the derivation nix-instantiate makes',
      );
      assert.ok(jobs.get('j05')?.inputDrvs[jobs.get('shared')?.drvPath ?? ''], 'inputs come from the .drv');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a syntax error in a file, or a missing selected attribute, fails the whole evaluation', async () => {
  const dir = await tempSource({ 'broken.nix': '{ a = ; }', 'jobs.nix': `{ a = ${drvExpr(`a-${nonce()}`)}; }` });
  try {
    await assert.rejects(
      collect({ source: { kind: 'file', path: join(dir, 'broken.nix') } }),
      (error: unknown) => error instanceof EvaluationFailedError && /syntax error/.test(error.message) && error.message.includes('broken.nix'),
    );
    await assert.rejects(
      collect({ source: { kind: 'file', path: join(dir, 'jobs.nix') }, attrs: ['checks'] }),
      (error: unknown) => error instanceof EvaluationFailedError && /cannot evaluate attribute 'checks'/.test(error.message) && /attribute 'checks' missing/.test(error.message),
    );
    await assert.rejects(
      collect({ source: { kind: 'file', path: join(dir, 'jobs.nix') }, attrs: ['a.name'] }),
      (error: unknown) => error instanceof EvaluationFailedError && /neither a derivation nor an attribute set/.test(error.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a syntax error in a flake fails the evaluation naming the flake and the error', async () => {
  const dir = await tempSource({ 'flake.nix': `${FLAKE_PREFIX}{ checks = ; }; }` });
  try {
    await assert.rejects(collect({ source: { kind: 'flake', ref: dir } }), (error: unknown) => {
      assert.ok(error instanceof EvaluationFailedError);
      assert.match(error.message, new RegExp(`cannot load flake '${dir}'`));
      assert.match(error.nixMessage, /syntax error, unexpected ';'/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('flake checks (system.name) and hydraJobs (job.system) are entered without recurseForDerivations', async () => {
  const n = nonce();
  const dir = await tempSource({
    'flake.nix': `${FLAKE_PREFIX}let d = name: ${drvExpr('${name}-' + n)}; in {
      checks.x86_64-linux = { unit = d "unit"; lint = d "lint"; };
      hydraJobs = { tarball.x86_64-linux = d "tarball"; manual.x86_64-linux = d "manual"; };
    }; }`,
  });
  try {
    const { jobs, errors } = await collect({ source: { kind: 'flake', ref: `path:${dir}` }, attrs: ['checks', 'hydraJobs'] });
    assert.equal(errors.size, 0);
    const attrs = ['checks.x86_64-linux.lint', 'checks.x86_64-linux.unit', 'hydraJobs.manual.x86_64-linux', 'hydraJobs.tarball.x86_64-linux'];
    assert.deepEqual([...jobs.keys()].sort(), attrs);
    for (const attr of attrs) assert.equal(jobs.get(attr)?.drvPath, await nix('eval', '--raw', `path:${dir}#${attr}.drvPath`));

    const honouring = await collect({ source: { kind: 'flake', ref: `path:${dir}` }, attrs: ['hydraJobs'], forceRecurse: false });
    assert.equal(honouring.lines.length, 0, 'without forceRecurse, nested sets need recurseForDerivations');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a git flake sees committed files only, and is evaluated at its revision', async () => {
  const n = nonce();
  const dir = await tempSource({
    'flake.nix': `${FLAKE_PREFIX}{ checks.x86_64-linux = import ./jobs.nix; }; }`,
    'jobs.nix': `{ committed = ${drvExpr(`committed-${n}`)}; }`,
    'untracked.nix': '{ }',
  });
  try {
    const git = (...args: string[]): Promise<string> => tool('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], dir);
    await git('init', '-q');
    await git('add', 'flake.nix', 'jobs.nix');
    await git('commit', '-q', '-m', 'jobs');
    const { jobs } = await collect({ source: { kind: 'flake', ref: dir } });
    assert.deepEqual([...jobs.keys()], ['checks.x86_64-linux.committed']);
    assert.equal(jobs.get('checks.x86_64-linux.committed')?.drvPath, await nix('eval', '--raw', `${dir}#checks.x86_64-linux.committed.drvPath`));

    // A file git does not track is not part of the flake: importing it fails that attribute.
    await tool('sh', ['-c', "sed -i 's|import ./jobs.nix|import ./untracked.nix|' flake.nix && git add flake.nix"], dir);
    const { lines } = await collect({ source: { kind: 'flake', ref: dir } });
    assert.equal(lines.length, 1);
    assert.match((lines[0] as { error?: string }).error ?? '', /untracked\.nix': No such file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('with import-from-derivation off, an IFD attribute gets an error line and the rest evaluates', async () => {
  const n = nonce();
  const ifd = `builtins.readFile (${drvExpr(`generated-${n}`)})`;
  const dir = await tempSource({ 'jobs.nix': `{ plain = ${drvExpr(`plain-${n}`)}; usesIfd = ${drvExpr(`uses-ifd-${n}`, `text = ${ifd};`)}; }` });
  try {
    const source = { kind: 'file', path: join(dir, 'jobs.nix') } as const;
    const refused = await collect({ source, allowIfd: false });
    assert.deepEqual([...refused.jobs.keys()], ['plain']);
    assert.match(refused.errors.get('usesIfd')?.error ?? '', /allow-import-from-derivation' is disabled/);

    const allowed = await collect({ source });
    assert.equal(allowed.errors.size, 0);
    assert.ok(allowed.jobs.has('usesIfd'), 'with IFD allowed the attribute evaluates');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
