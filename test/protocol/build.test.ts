import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parseDerivation, type Derivation } from '../../daemon/core/derivation.ts';
import { ActivityTracker } from '../../daemon/protocol/activity.ts';
import { buildExitCode } from '../../daemon/protocol/build-wire.ts';
import { ActivityType } from '../../daemon/protocol/constants.ts';
import { DaemonError } from '../../daemon/protocol/errors.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { daemonSocket, instantiate, nixCli, nonce, outputsOf, realise } from './helpers.ts';

let pool: DaemonPool;

before(() => {
  pool = new DaemonPool({ socketPath: daemonSocket() });
});
after(() => pool.close());

function readDrv(path: string): Derivation {
  return parseDerivation(readFileSync(path, 'utf8'));
}

/** The drv's own sources plus the output paths it uses from its input derivations. */
function resolvedInputs(drv: Derivation): string[] {
  const inputs = [...drv.inputSrcs];
  for (const [inputDrv, names] of drv.inputDrvs) {
    const outputs = readDrv(inputDrv).outputs;
    for (const name of names) inputs.push(outputs.get(name)!.path);
  }
  return inputs;
}

function isValidPerNix(path: string): boolean {
  return nixCli('nix-store', ['--check-validity', '--print-invalid', path]).toString().trim() === '';
}

test('build-paths builds dependencies, streams log lines in order and reports build activities', async () => {
  const n = nonce();
  const { top } = instantiate(
    `rec {
      dep = sh "bp-dep-${n}" "echo dep-line; echo dep > $out";
      top = sh "bp-top-${n}" "echo first; echo second >&2; echo third; read x < \${dep}; echo $x top > $out";
    }`,
    ['top'],
  );
  const lines: string[] = [];
  const buildTexts: string[] = [];
  const tracker = new ActivityTracker({
    onLogLine: (line) => lines.push(line),
    onChange: (t) => buildTexts.push(...t.ofType(ActivityType.Build).map((a) => a.text)),
  });
  await pool.use((client) => client.buildPaths([{ drvPath: top! }], tracker.handlers()));
  assert.deepEqual(lines, ['dep-line', 'first', 'second', 'third']);
  assert.ok(buildTexts.some((text) => text.includes(top!)), 'a Build activity names the derivation');
  assert.equal(tracker.activities.size, 0, 'every activity was stopped');
  const [out] = outputsOf(top!);
  assert.ok(isValidPerNix(out!));
  assert.equal(readFileSync(out!, 'utf8'), 'dep top\n');
});

test('a failed build: build-paths throws the daemon error, with-results reports PermanentFailure', async () => {
  const n = nonce();
  const { fail } = instantiate(`{ fail = sh "bp-fail-${n}" "echo about to fail; exit 3"; }`, ['fail']);
  await assert.rejects(
    pool.use((client) => client.buildPaths([{ drvPath: fail! }])),
    (error: unknown) => {
      assert.ok(error instanceof DaemonError);
      assert.match(error.message, /failed with exit code 3/);
      return true;
    },
  );
  const [result] = await pool.use((client) => client.buildPathsWithResults([{ drvPath: fail! }]));
  assert.equal(result!.status, 'PermanentFailure');
  assert.equal(result!.success, false);
  assert.match(result!.errorMessage, /exit code 3/);
  assert.equal(buildExitCode([result!]), 100);
});

test('build-derivation builds a parsed .drv whose inputs are valid, then reports it already valid', async () => {
  const n = nonce();
  const { dep, top } = instantiate(
    `rec {
      dep = sh "bd-dep-${n}" "echo dep > $out";
      top = sh "bd-top-${n}" "echo building top; read x < \${dep}; echo $x top > $out";
    }`,
    ['dep', 'top'],
  );
  realise(dep!);
  const drv = readDrv(top!);
  const lines: string[] = [];
  const tracker = new ActivityTracker({ onLogLine: (line) => lines.push(line) });
  await pool.use(async (client) => {
    const result = await client.buildDerivation(top!, drv, resolvedInputs(drv), tracker.handlers());
    assert.equal(result.status, 'Built', result.errorMessage);
    assert.equal(result.timesBuilt, 1);
    assert.ok(result.stopTime >= result.startTime && result.startTime > 0);
    assert.deepEqual(lines, ['building top']);
    const out = drv.outputs.get('out')!.path;
    assert.ok(isValidPerNix(out));
    assert.equal(readFileSync(out, 'utf8'), 'dep top\n');
    // The daemon recorded the deriver we named.
    assert.equal(nixCli('nix-store', ['--query', '--deriver', out]).toString().trim(), top);

    const again = await client.buildDerivation(top!, drv, resolvedInputs(drv));
    assert.equal(again.status, 'AlreadyValid');
  });
});

test('build-derivation of a failing builder returns PermanentFailure and leaves no output', async () => {
  const n = nonce();
  const { fail } = instantiate(`{ fail = sh "bd-fail-${n}" "echo no; exit 7"; }`, ['fail']);
  const drv = readDrv(fail!);
  await pool.use(async (client) => {
    const result = await client.buildDerivation(fail!, drv, resolvedInputs(drv));
    assert.equal(result.status, 'PermanentFailure');
    assert.match(result.errorMessage, /exit code 7/);
    assert.equal(await client.isValidPath(drv.outputs.get('out')!.path), false);
  });
});

test('build-derivation with an input that is not valid fails, not hangs', async () => {
  const n = nonce();
  const { dep, top } = instantiate(
    `rec {
      dep = sh "bd-missing-dep-${n}" "echo dep > $out";
      top = sh "bd-missing-top-${n}" "cat \${dep} > $out";
    }`,
    ['dep', 'top'],
  );
  const drv = readDrv(top!);
  await pool.use(async (client) => {
    const result = await client.buildDerivation(top!, drv, resolvedInputs(drv));
    assert.equal(result.status, 'MiscFailure');
    assert.ok(result.errorMessage.includes(`dependency '${readDrv(dep!).outputs.get('out')!.path}'`), result.errorMessage);
    assert.ok(!result.errorMessage.includes('\u001b'), 'terminal colours are stripped');
  });
});
