/**
 * The evaluation's subprocesses: killed as a whole tree on timeout and on abort (including the
 * builders Nix starts for import-from-derivation), run in parallel, and blind to our secrets.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDerivation } from '../../daemon/core/derivation.ts';
import { EvaluationAbortedError, EvaluationTimeoutError, evaluateJobs } from '../../daemon/eval/index.ts';
import { minimalEnvironment, spawnTree } from '../../daemon/eval/process.ts';
import { collect, drvExpr, nix, nonce, OFFLINE_NIX_OPTIONS, processesMatching, tempSource, waitFor } from './support.ts';

/** A jobs file whose `slow` attribute imports from a derivation whose builder sleeps for an hour. */
async function slowSource(n: string): Promise<string> {
  // The sleep's argument carries the nonce, so the builder is recognisable in /proc.
  const sleeper = `builtins.derivation { name = "sleeper-${n}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "exec /bin/sleep 3600.${n.replace(/\D/g, '1')}" ]; }`;
  return tempSource({ 'jobs.nix': `{ slow = ${drvExpr(`slow-${n}`, `text = builtins.readFile (${sleeper});`)}; }` }, n);
}

/** Fails unless no process mentions any of `needles` (the source directory, the builder's argument). */
async function assertTreeGone(...needles: string[]): Promise<void> {
  const left = async (): Promise<string[]> => (await Promise.all(needles.map(processesMatching))).flat();
  await waitFor('the evaluation processes to be gone', async () => (await left()).length === 0, 5000).catch(async () => {
    assert.fail(`processes left behind:\n${(await left()).join('\n')}`);
  });
}

test('a timeout kills the evaluation and the builder it started, leaving no process behind', async () => {
  const n = nonce();
  const sleepArg = `3600.${n.replace(/\D/g, '1')}`;
  const dir = await slowSource(n);
  try {
    let builderSeen = false;
    const watcher = waitFor('the IFD builder to start', async () => (builderSeen = (await processesMatching(sleepArg)).length > 0), 8000);
    const started = Date.now();
    const evaluation = evaluateJobs({ source: { kind: 'file', path: join(dir, 'jobs.nix') }, nixOptions: OFFLINE_NIX_OPTIONS, evaluator: 'builtin', timeoutMs: 2500, onJob: () => undefined });
    await assert.rejects(evaluation, (error: unknown) => error instanceof EvaluationTimeoutError && error.timeoutMs === 2500);
    assert.ok(Date.now() - started < 6000, 'the timeout stops the evaluation promptly');
    await watcher.catch(() => undefined);
    assert.ok(builderSeen, 'the builder was running when the timeout hit');
    await assertTreeGone(n, sleepArg);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an abort kills the evaluation tree too', async () => {
  const n = nonce();
  const sleepArg = `3600.${n.replace(/\D/g, '1')}`;
  const dir = await slowSource(n);
  try {
    const controller = new AbortController();
    const evaluation = evaluateJobs({ source: { kind: 'file', path: join(dir, 'jobs.nix') }, nixOptions: OFFLINE_NIX_OPTIONS, evaluator: 'builtin', signal: controller.signal, onJob: () => undefined });
    const rejected = assert.rejects(evaluation, (error: unknown) => error instanceof EvaluationAbortedError && /stop now/.test(error.message));
    await waitFor('the IFD builder to start', async () => (await processesMatching(sleepArg)).length > 0);
    controller.abort(new Error('stop now'));
    await rejected;
    await assertTreeGone(n, sleepArg);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('killing a tree also kills descendants that left the process group (setsid)', async () => {
  const sleepArg = `3600.${Date.now()}`;
  const proc = spawnTree('/bin/sh', ['-c', `setsid /bin/sleep ${sleepArg} & wait`], minimalEnvironment());
  await waitFor('the escaped sleep to start', async () => (await processesMatching(sleepArg)).length > 0);
  await proc.kill();
  await assertTreeGone(sleepArg);
});

test('the evaluation does not see our environment: secrets stay behind', async () => {
  const secrets = { HARMONIA_TEST_FAKE_SECRET: `secret-${nonce()}`, AWS_SECRET_ACCESS_KEY: `aws-${nonce()}` };
  const n = nonce();
  const getEnv = Object.keys(secrets).map((name) => `${name} = builtins.getEnv "${name}";`).join(' ');
  const dir = await tempSource({ 'jobs.nix': `{ leak = ${drvExpr(`leak-${n}`, `${getEnv} home = builtins.getEnv "HOME";`)}; }` });
  const saved = { ...process.env };
  Object.assign(process.env, secrets);
  try {
    const file = join(dir, 'jobs.nix');
    // Control: Nix started with our environment does read the variable this way.
    assert.equal(JSON.parse(await nix('eval', '--impure', '--json', '--expr', `(import ${file}).leak.HARMONIA_TEST_FAKE_SECRET`)), secrets.HARMONIA_TEST_FAKE_SECRET);

    const { jobs } = await collect({ source: { kind: 'file', path: file } });
    const drvPath = jobs.get('leak')?.drvPath ?? assert.fail('the attribute evaluated');
    const env = parseDerivation(await readFile(drvPath, 'utf8')).env;
    assert.equal(env.get('HARMONIA_TEST_FAKE_SECRET'), '');
    assert.equal(env.get('AWS_SECRET_ACCESS_KEY'), '');
    assert.notEqual(env.get('home'), '', 'variables on the allow-list do reach the evaluation');
  } finally {
    for (const name of Object.keys(secrets)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
    await rm(dir, { recursive: true, force: true });
  }
});

test('workers evaluate attributes in parallel', async () => {
  // Each attribute imports from a builder that waits for the other's builder to have started:
  // both can only finish if two evaluations run at the same time.
  const n = nonce();
  const meeting = await tempSource({}, `meet-${n}`);
  const rendezvous = (me: string, other: string): string =>
    `builtins.readFile (builtins.derivation { name = "${me}-${n}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" ''
      : > ${meeting}/${me}
      i=0
      while [ ! -e ${meeting}/${other} ]; do i=$((i + 1)); [ "$i" -lt 200 ] || exit 1; /bin/sleep 0.05; done
      echo met > $out
    '' ]; })`;
  const dir = await tempSource({
    'jobs.nix': `{ left = ${drvExpr(`left-${n}`, `met = ${rendezvous('a', 'b')};`)}; right = ${drvExpr(`right-${n}`, `met = ${rendezvous('b', 'a')};`)}; }`,
  });
  try {
    const started = Date.now();
    const { jobs, errors } = await collect({ source: { kind: 'file', path: join(dir, 'jobs.nix') }, workers: 2 });
    assert.deepEqual([...errors.values()], []);
    assert.deepEqual([...jobs.keys()].sort(), ['left', 'right']);
    assert.ok(Date.now() - started < 9000);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(meeting, { recursive: true, force: true });
  }
});

test('a store it cannot reach fails the evaluation, tried three times, instead of marking jobs broken', async () => {
  const dir = await tempSource({ 'jobs.nix': `{ a = ${drvExpr(`unreachable-${nonce()}`)}; }` });
  try {
    const lines: unknown[] = [];
    const evaluation = evaluateJobs({
      source: { kind: 'file', path: join(dir, 'jobs.nix') },
      nixOptions: OFFLINE_NIX_OPTIONS,
      evaluator: 'builtin',
      extraEnv: { NIX_REMOTE: `unix://${join(dir, 'no-daemon.sock')}` },
      onJob: (line) => void lines.push(line),
    });
    await assert.rejects(evaluation, /the evaluation cannot reach its Nix store \(.*cannot connect to socket at.*\): check that the nix-daemon runs/);
    assert.deepEqual(lines, [], 'no job was recorded as broken');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
