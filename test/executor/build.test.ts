import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatHash } from '../../daemon/core/hash.ts';
import type { Executor } from '../../daemon/executor/executor.ts';
import { truncationMarker } from '../../daemon/executor/run-build.ts';
import type { BuildOutcome } from '../../daemon/executor/types.ts';
import { instantiate, nixCli, nonce, realise } from '../protocol/helpers.ts';
import { requestFor, testExecutor } from './helpers.ts';

let executor: Executor;
let rootsDir: string;
let close: () => Promise<void>;

before(async () => {
  ({ executor, rootsDir, close } = await testExecutor());
});
after(() => close());

function query(flag: string, path: string): string {
  return nixCli('nix-store', ['--query', flag, path]).toString().trim();
}

/** Processes whose command line contains `marker` (the builder's script carries a nonce). */
function processesWith(marker: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args=']).toString();
  return out.split('\n').filter((line) => line.includes(marker) && !line.includes('ps -eo'));
}

function expectKind<K extends BuildOutcome['kind']>(outcome: BuildOutcome, kind: K): Extract<BuildOutcome, { kind: K }> {
  assert.equal(outcome.kind, kind, JSON.stringify(outcome, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  return outcome as Extract<BuildOutcome, { kind: K }>;
}

test('a successful build streams its log and reports path, NAR hash, size and references per output', async () => {
  const n = nonce();
  const { dep, top } = instantiate(
    `rec {
      dep = sh "ex-dep-${n}" "echo dep > $out";
      top = derivation {
        name = "ex-top-${n}"; builder = "/bin/sh"; system = builtins.currentSystem;
        outputs = [ "out" "doc" ];
        args = [ "-c" "echo one; echo two; echo \${dep} > $out; echo doc > $doc" ];
      };
    }`,
    ['dep', 'top'],
  );
  realise(dep!);
  const lines: string[] = [];
  const phases: string[] = [];
  const outcome = expectKind(
    await executor.build(requestFor(top!, { onLogLine: (line) => lines.push(line), onActivity: (t) => phases.push(...[...t.activities.values()].map((a) => a.typeName)) })),
    'succeeded',
  );
  assert.deepEqual(lines, ['one', 'two']);
  assert.ok(phases.includes('Build'));
  assert.equal(outcome.status, 'Built');
  assert.deepEqual(outcome.outputs.map((o) => o.name).sort(), ['doc', 'out']);
  for (const output of outcome.outputs) {
    assert.equal(formatHash(output.narHash, 'base32'), query('--hash', output.path));
    assert.equal(String(output.narSize), query('--size', output.path));
    assert.deepEqual(output.references, query('--references', output.path).split('\n').filter(Boolean));
  }
  assert.ok(outcome.outputs.find((o) => o.name === 'out')!.references.length === 1, 'out references dep');
  assert.deepEqual(readdirSync(rootsDir), [], 'roots are removed after the build');
});

test('a failing build ends as failed with the daemon status and message', async () => {
  const { fail } = instantiate(`{ fail = sh "ex-fail-${nonce()}" "echo bad; exit 2"; }`, ['fail']);
  const outcome = expectKind(await executor.build(requestFor(fail!)), 'failed');
  assert.equal(outcome.status, 'PermanentFailure');
  assert.match(outcome.message, /exit code 2/);
});

test('a build that prints too much is truncated with one marker and still succeeds', async () => {
  // 2000 lines of 100 bytes: about 200 kB against a 20 kB limit.
  const { loud } = instantiate(
    `{ loud = sh "ex-loud-${nonce()}" "i=0; while [ $i -lt 2000 ]; do echo \\"line $i ........................................................................................\\"; i=$((i+1)); done; echo ok > $out"; }`,
    ['loud'],
  );
  const lines: string[] = [];
  const outcome = expectKind(await executor.build(requestFor(loud!, { limits: { maxLogBytes: 20_000 }, onLogLine: (l) => lines.push(l) })), 'succeeded');
  assert.equal(outcome.logTruncated, true);
  assert.ok(outcome.logBytes > 190_000, `counted ${outcome.logBytes} bytes`);
  assert.equal(lines.at(-1), truncationMarker(20_000));
  assert.equal(lines.filter((l) => l.startsWith('[harmonia-ci')).length, 1);
  assert.ok(lines.slice(0, -1).join('\n').length <= 20_000);
  assert.equal(readFileSync(outcome.outputs[0]!.path, 'utf8'), 'ok\n');
});

test('a build that goes silent is stopped after the silence limit and its builder is killed', async () => {
  const n = nonce();
  const { quiet } = instantiate(`{ quiet = sh "ex-quiet-${n}" "echo started-${n}; /bin/sleep 60; echo > $out"; }`, ['quiet']);
  const started = Date.now();
  const outcome = expectKind(await executor.build(requestFor(quiet!, { limits: { maxSilenceMs: 1500 } })), 'silent');
  assert.equal(outcome.limitMs, 1500);
  assert.ok(Date.now() - started < 10_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(processesWith(`started-${n}`), []);
});

test('a build that outlives the wall clock is stopped even while it keeps talking', async () => {
  const n = nonce();
  const { chatty } = instantiate(`{ chatty = sh "ex-wall-${n}" "while :; do echo tick-${n}; /bin/sleep 0.2; done"; }`, ['chatty']);
  let ticks = 0;
  const outcome = expectKind(await executor.build(requestFor(chatty!, { limits: { wallClockMs: 2000, maxSilenceMs: 1000 }, onLogLine: () => ticks++ })), 'timed-out');
  assert.equal(outcome.limitMs, 2000);
  assert.ok(ticks >= 5, `saw ${ticks} lines`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(processesWith(`tick-${n}`), []);
});

test('outputs larger than the limit fail the build as output-too-large', async () => {
  const { big } = instantiate(
    `{ big = sh "ex-big-${nonce()}" "i=0; while [ $i -lt 500 ]; do echo 0123456789abcdef >> $out; i=$((i+1)); done"; }`,
    ['big'],
  );
  const outcome = expectKind(await executor.build(requestFor(big!, { limits: { maxOutputBytes: 4096 } })), 'output-too-large');
  assert.equal(outcome.limitBytes, 4096);
  assert.equal(outcome.totalBytes, Number(query('--size', outcome.outputs[0]!.path)));
  assert.ok(outcome.totalBytes > 8500);
});

test('aborting the signal cancels a running build', async () => {
  const n = nonce();
  const { slow } = instantiate(`{ slow = sh "ex-cancel-${n}" "echo begin-${n}; /bin/sleep 60; echo > $out"; }`, ['slow']);
  const controller = new AbortController();
  const outcome = executor.build(requestFor(slow!, { signal: controller.signal, onLogLine: () => controller.abort() }));
  expectKind(await outcome, 'cancelled');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(processesWith(`begin-${n}`), []);
});

test('inputs and outputs are GC roots while the build runs, and crash leftovers are removed at start', async () => {
  const n = nonce();
  const { dep, top } = instantiate(
    `rec { dep = sh "ex-root-dep-${n}" "echo dep > $out"; top = sh "ex-root-top-${n}" "echo go; read x < \${dep}; echo $x > $out"; }`,
    ['dep', 'top'],
  );
  const [depOut] = realise(dep!);
  let rootsDuringBuild = '';
  let linksDuringBuild: string[] = [];
  const request = requestFor(top!, {
    onLogLine: () => {
      rootsDuringBuild = nixCli('nix-store', ['--gc', '--print-roots']).toString();
      linksDuringBuild = readdirSync(rootsDir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isSymbolicLink())
        .map((entry) => readlinkSync(join(entry.parentPath, entry.name)));
    },
  });
  const outcome = expectKind(await executor.build(request), 'succeeded');
  const rootedTargets = rootsDuringBuild.split('\n').filter((line) => line.startsWith(rootsDir)).map((line) => line.split(' -> ')[1]);
  assert.deepEqual(rootedTargets.sort(), [depOut!, outcome.outputs[0]!.path].sort());
  assert.deepEqual(linksDuringBuild.sort(), [depOut!, outcome.outputs[0]!.path].sort());

  // A directory of a process that no longer exists is what a crash leaves behind.
  const stale = join(rootsDir, '999999999-deadbeef-crashed');
  mkdirSync(stale);
  symlinkSync(depOut!, join(stale, 'leftover'));
  const { executor: fresh, close: closeFresh } = await testExecutor({ rootsDir });
  try {
    assert.deepEqual(fresh.staleRootsRemoved, ['999999999-deadbeef-crashed']);
    assert.deepEqual(readdirSync(rootsDir), []);
  } finally {
    await closeFresh();
  }
});
