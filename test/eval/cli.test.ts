/** `harmonia-ci eval-jobs` as a user runs it: JSON lines on stdout, exit status by whole-eval outcome. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import type { EvalJobLine } from '../../daemon/eval/index.ts';
import { drvExpr, nonce, tempSource, tool } from './support.ts';

const CLI = resolve(import.meta.dirname, '../../bin/harmonia-ci.mjs');
const OFFLINE = ['--nix-option', 'substituters=', '--nix-option', 'build-users-group='];

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function evalJobs(args: string[]): Promise<CliRun> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, 'eval-jobs', ...args], (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

test('eval-jobs prints one line per job and per failed attribute, and succeeds', async () => {
  const n = nonce();
  const ifd = `builtins.readFile (${drvExpr(`generated-${n}`)})`;
  const dir = await tempSource({
    'jobs.nix': `{ ci = { good = ${drvExpr(`good-${n}`)}; broken = throw "broken ${n}"; usesIfd = ${drvExpr(`ifd-${n}`, `t = ${ifd};`)}; }; other = throw "not selected"; }`,
  });
  try {
    const file = join(dir, 'jobs.nix');
    const run = await evalJobs([file, '-A', 'ci', '--no-ifd', '--workers', '2', ...OFFLINE]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as EvalJobLine);
    const byAttr = new Map(lines.map((line) => [line.attr, line]));
    assert.deepEqual([...byAttr.keys()].sort(), ['ci.broken', 'ci.good', 'ci.usesIfd']);
    const good = byAttr.get('ci.good');
    assert.ok(good && 'drvPath' in good);
    assert.equal(good.drvPath, (await tool('nix-instantiate', [file, '-A', 'ci.good'])).trim());
    assert.match((byAttr.get('ci.broken') as { error: string }).error, new RegExp(`broken ${n}`));
    assert.match((byAttr.get('ci.usesIfd') as { error: string }).error, /allow-import-from-derivation/);
    assert.match(run.stderr, /evaluated 1 jobs, 2 attributes failed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('eval-jobs exits 1 with Nix\'s message when the whole evaluation fails', async () => {
  const dir = await tempSource({ 'broken.nix': '{ a = ; }' });
  try {
    const run = await evalJobs([join(dir, 'broken.nix'), ...OFFLINE]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /cannot evaluate the top-level value of file '.*broken\.nix'/);
    assert.match(run.stderr, /syntax error/);

    const badTimeout = await evalJobs([join(dir, 'broken.nix'), '--timeout', 'soon']);
    assert.equal(badTimeout.code, 1);
    assert.match(badTimeout.stderr, /--timeout 'soon' is not a duration/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
