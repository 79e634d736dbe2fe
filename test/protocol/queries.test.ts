import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { formatHash, parseHash } from '../../daemon/core/hash.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { addFile, daemonSocket, instantiate, nixCli, nixCliResult, nonce, outputsOf, realise } from './helpers.ts';

let pool: DaemonPool;
let built: string;
let text: string;
let drvs: Record<string, string>;
const absent = '/nix/store/00000000000000000000000000000000-harmonia-absent';

before(() => {
  pool = new DaemonPool({ socketPath: daemonSocket() });
  const n = nonce();
  drvs = instantiate(
    `rec {
      dep = sh "dep-${n}" "echo dep > $out";
      top = sh "top-${n}" "read x < \${dep}; echo $x > $out; echo \${dep} >> $out";
      fresh = sh "fresh-${n}" "echo fresh > $out";
    }`,
    ['dep', 'top', 'fresh'],
  );
  built = realise(drvs.top!)[0]!;
  text = addFile(`text-${n}`, 'some text\n');
});

after(() => pool.close());

/** Paths nix-store --check-validity --print-invalid reports as invalid. */
function invalidPerNix(paths: string[]): string[] {
  return nixCli('nix-store', ['--check-validity', '--print-invalid', ...paths]).toString().split('\n').filter(Boolean);
}

test('is-valid-path and query-valid-paths agree with nix-store --check-validity', async () => {
  const candidates = [built, text, drvs.top!, absent, ...outputsOf(drvs.fresh!)];
  const invalid = new Set(invalidPerNix(candidates));
  await pool.use(async (client) => {
    for (const path of candidates) assert.equal(await client.isValidPath(path), !invalid.has(path), path);
    const valid = await client.queryValidPaths(candidates);
    assert.deepEqual(new Set(valid), new Set(candidates.filter((p) => !invalid.has(p))));
  });
});

test('query-path-info matches nix path-info --json field by field', async () => {
  const paths = [built, text, drvs.top!];
  const oracle = JSON.parse(
    nixCli('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', ...paths]).toString(),
  ) as Array<Record<string, unknown>>;
  await pool.use(async (client) => {
    for (const expected of oracle) {
      const path = expected.path as string;
      const info = await client.queryPathInfo(path);
      assert.ok(info, path);
      assert.equal(formatHash(info.narHash, 'base32'), formatHash(parseHash(expected.narHash as string), 'base32'));
      assert.equal(info.narSize, expected.narSize);
      assert.deepEqual(info.references, expected.references);
      assert.equal(info.deriver, expected.deriver);
      assert.equal(info.registrationTime, expected.registrationTime);
      assert.equal(info.ultimate, expected.ultimate ?? false);
      assert.deepEqual(info.signatures, expected.signatures ?? []);
      assert.equal(info.ca, expected.ca);
    }
    // nix-store --query --hash prints the same digest in base32.
    const hash = nixCli('nix-store', ['--query', '--hash', built]).toString().trim();
    assert.equal(formatHash((await client.queryPathInfo(built))!.narHash, 'base32'), hash);
    assert.equal(await client.queryPathInfo(absent), undefined);
  });
});

/** Paths listed by `nix-store --realise --dry-run` under a heading matching `heading`. */
function dryRunSection(drvPaths: string[], heading: RegExp): string[] {
  const { stderr } = nixCliResult('nix-store', ['--realise', '--dry-run', ...drvPaths]);
  const lines = stderr.split('\n');
  const out: string[] = [];
  let inSection = false;
  for (const line of lines) {
    if (!line.startsWith('  ')) inSection = heading.test(line);
    else if (inSection) out.push(line.trim());
  }
  return out.sort();
}

test('query-missing agrees with nix-store --realise --dry-run', async () => {
  const n = nonce();
  const fresh = instantiate(
    `rec {
      a = sh "qm-a-${n}" "echo a > $out";
      b = sh "qm-b-${n}" "read x < \${a}; echo $x > $out";
    }`,
    ['a', 'b'],
  );
  await pool.use(async (client) => {
    const missing = await client.queryMissing([{ drvPath: fresh.b! }, { drvPath: drvs.top! }, absent]);
    assert.deepEqual([...missing.willBuild].sort(), dryRunSection([fresh.b!, drvs.top!], /will be built/));
    assert.deepEqual(missing.willBuild.sort(), [fresh.a!, fresh.b!].sort());
    assert.deepEqual(missing.willSubstitute, []);
    assert.deepEqual(missing.unknown, [absent]);
    assert.deepEqual(dryRunSection([absent], /don't know how to build/), [absent]);

    // Once `a` is built only `b` remains, and selecting a named output works too.
    realise(fresh.a!);
    const after = await client.queryMissing([{ drvPath: fresh.b!, outputs: ['out'] }]);
    assert.deepEqual(after.willBuild, [fresh.b!]);
    assert.deepEqual(after.willBuild, dryRunSection([fresh.b!], /will be built/));
  });
});
