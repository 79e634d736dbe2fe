/**
 * A builder that lies to the signer. It runs the real upload code (presigned PUTs to SeaweedFS)
 * but announces what is not so: a path its derivation does not place, a NAR other than the one
 * announced, references outside the derivation's input closure or absent from the output, a
 * forged `.drv` placing its output at another derivation's path, a fixed-output path with other
 * contents, a second upload for a published path. Each is refused with its reason, nothing is
 * signed, nothing replaced, the staged upload is gone; the honest publish afterwards succeeds and
 * the real `nix-store` substitutes it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { createUploadActivities, prepareStaging, uploadToUrl, type HostUploads } from '../../activities/builder/upload.ts';
import { initialiseCache, SIGNER_REJECTED } from '../../activities/signer/index.ts';
import type { StagedUpload } from '../../activities/types.ts';
import { narInfoKey, narKey, stagingKey } from '../../cache/layout.ts';
import { formatHash, toNarHash } from '../../daemon/core/hash.ts';
import { formatStorePath, makeTextPath } from '../../daemon/core/store-path.ts';
import { formatKey, generateKeyPair } from '../../daemon/core/signing.ts';
import { zstdCompress } from '../../daemon/executor/zstd.ts';
import { ReferenceScanner } from '../../daemon/nar/references.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import {
  assertEveryNarInfoHasItsNar,
  NIX_OPTIONS,
  nonce,
  pathInfos,
  runNix,
  s3Backend,
  serveCache,
  signerOnTestStore,
  substitute,
  tempDir,
  type TestBackend,
} from './helpers.ts';

const SYSTEM = 'x86_64-linux';

async function nixOut(tool: string, args: readonly string[]): Promise<string[]> {
  const result = await runNix(tool, args);
  if (!result.ok) throw new Error(`${tool} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout.trim().split('\n');
}

async function dump(path: string): Promise<Buffer> {
  return (await execa('nix-store', ['--dump', path], { encoding: 'buffer' })).stdout as Buffer;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function compress(nar: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of zstdCompress(once(nar))) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const sha256Of = (bytes: Uint8Array) => ({ algorithm: 'sha256' as const, digest: new Uint8Array(createHash('sha256').update(bytes).digest()) });

describe('the signer refuses a lying builder', () => {
  let test: TestBackend;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let signer: ReturnType<typeof signerOnTestStore>;
  let host: HostUploads;
  const key = generateKeyPair('harmonia-test-verify-1');
  const token = nonce();
  let dep: BuiltOutput;
  let depDrv: string;
  let unrelated: BuiltOutput;
  let evil: BuiltOutput;
  let evilDrv: string;
  let fodDrv: string;
  let fodPath: string;

  before(async () => {
    tmp = await tempDir('verify');
    test = await s3Backend();
    await initialiseCache(test.backend);
    signer = signerOnTestStore(test.backend, key.secretKey);
    const stagingDir = join(tmp.dir, 'staging');
    await prepareStaging(stagingDir);
    host = createUploadActivities({ stagingDir });

    const right = join(tmp.dir, 'right');
    await writeFile(right, `right ${token}\n`);
    const rightHash = createHash('sha256').update(`right ${token}\n`).digest('hex');
    const file = join(tmp.dir, `verify-${token}.nix`);
    await writeFile(
      file,
      `let
  sh = args: name: builtins.derivation ({ inherit name; system = builtins.currentSystem; builder = "/bin/sh"; } // args);
  dep = sh { args = [ "-c" "echo dependency ${token} > $out" ]; } "verify-dep-${token}";
  unrelated = sh { args = [ "-c" "echo unrelated ${token} > $out" ]; } "verify-unrelated-${token}";
  # Names a path it does not depend on: Nix finds no reference, a liar may claim one.
  evil = sh { args = [ "-c" "echo ${'$'}{builtins.unsafeDiscardStringContext (toString unrelated)} > $out" ]; } "verify-evil-${token}";
  fod = sh { args = [ "-c" "exit 1" ]; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "${rightHash}"; } "verify-fod-${token}";
in { inherit dep unrelated evil fod; }
`,
    );
    const built = await nixOut('nix-build', [...NIX_OPTIONS, '--no-out-link', file, '-A', 'dep', '-A', 'unrelated', '-A', 'evil']);
    [dep, unrelated, evil] = (await pathInfos(built)) as [BuiltOutput, BuiltOutput, BuiltOutput];
    let fod: string;
    [depDrv, , evilDrv, fod] = (await nixOut('nix-instantiate', [...NIX_OPTIONS, file, '-A', 'dep', '-A', 'unrelated', '-A', 'evil', '-A', 'fod'])) as [string, string, string, string];
    fodDrv = fod;
    fodPath = (await nixOut('nix-store', ['--query', '--outputs', fodDrv]))[0]!;
    assert.deepEqual(evil.references, [], 'Nix finds no reference to a path the build did not depend on');
  });
  after(async () => {
    await signer?.pool.close();
    await test?.close();
    await tmp?.remove();
  });

  /** Announces `output` for `drvPath` and uploads `nar` (whatever it is) to the targets the signer issues. */
  async function lie(drvPath: string, output: BuiltOutput, nar: Buffer): Promise<StagedUpload> {
    const compressed = await compress(nar);
    const staged: StagedUpload = {
      drvPath,
      system: SYSTEM,
      outputs: [{ ...output, file: { size: compressed.length, sha256: formatHash(sha256Of(compressed), 'base32') } }],
    };
    for (const { key: objectKey, target } of (await signer.prepareUpload(staged)).uploads) {
      assert.equal(target.kind, 'put');
      if (target.kind === 'put') await uploadToUrl(objectKey, compressed, target);
    }
    return staged;
  }

  async function assertRefused(attempt: Promise<unknown>, reason: RegExp): Promise<void> {
    await assert.rejects(attempt, (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure, String(error));
      assert.equal(error.type, SIGNER_REJECTED);
      assert.match(error.message, /^rejected by the signer: /);
      assert.match(error.message, reason);
      return true;
    });
  }

  /** Nothing signed for `path`, nothing under its NAR's final name, nothing left staged. */
  async function assertNothingWritten(staged: StagedUpload): Promise<void> {
    for (const output of staged.outputs) {
      assert.equal(await test.backend.head(narInfoKey(output.path)), undefined, `no narinfo for ${output.path}`);
      assert.equal(await test.backend.head(narKey(output.narHash)), undefined, 'no NAR under its final name');
      assert.equal(await test.backend.head(stagingKey({ key: narKey(output.narHash), ...output.file })), undefined, 'the staged upload was discarded');
    }
  }

  it('finds the references Nix finds, across any chunking', async () => {
    const [top] = await pathInfos([(await nixOut('nix-store', ['--query', '--outputs', depDrv]))[0]!]);
    const nar = await dump(top!.path);
    for (const size of [7, 31, 32, 33, 4096]) {
      const scanner = new ReferenceScanner([dep.path, unrelated.path, evil.path]);
      for (let at = 0; at < nar.length; at += size) scanner.update(nar.subarray(at, at + size));
      assert.deepEqual(scanner.references(), top!.references, `chunks of ${size}`);
    }
    const evilScan = new ReferenceScanner([unrelated.path]);
    evilScan.update(await dump(evil.path));
    assert.deepEqual(evilScan.references(), [unrelated.path], 'the hash part is found wherever it occurs');
  });

  it('refuses a path the derivation does not place, before anything is uploaded', async () => {
    await assertRefused(lie(evilDrv, { ...dep }, await dump(dep.path)), /is not the output 'out' of .*verify-evil/);
  });

  it('refuses a NAR other than the one announced (NarHash mismatch)', async () => {
    const nar = await dump(dep.path);
    const tampered = Buffer.from(nar);
    tampered[tampered.lastIndexOf(Buffer.from('dependency'))] = 'D'.charCodeAt(0);
    const staged = await lie(depDrv, dep, tampered);
    await assertRefused(signer.publish(staged), /NarHash mismatch/);
    await assertNothingWritten(staged);
  });

  it('refuses a NAR that is not valid zstd or not a NAR', async () => {
    const staged = await lie(depDrv, dep, Buffer.from('not a NAR at all'));
    await assertRefused(signer.publish(staged), /not a valid NAR/);
    await assertNothingWritten(staged);
  });

  it('refuses a reference outside the closure of the inputs, and one that does not occur', async () => {
    const outside = await lie(evilDrv, { ...evil, references: [unrelated.path] }, await dump(evil.path));
    await assertRefused(signer.publish(outside), /refers to .*verify-unrelated.* outside the closure of the inputs/);
    await assertNothingWritten(outside);
    const absent = await lie(evilDrv, { ...evil, references: [dep.path] }, await dump(evil.path));
    await assertRefused(signer.publish(absent), /claims a reference to .*verify-dep.* which does not occur/);
    await assertNothingWritten(absent);
  });

  it("refuses a forged .drv that places its output at another derivation's path", async () => {
    // Nix will not store such a derivation; published as an evaluator publishes `.drv` files, its
    // text path is valid for its contents, so only the output path computation can catch it.
    const name = `verify-dep-${token}.drv`;
    const text = `Derive([("out","${dep.path}","","")],[],[],"${SYSTEM}","/bin/sh",["-c","echo owned > $out"],[("out","${dep.path}")])`;
    const file = join(tmp.dir, name);
    await writeFile(file, text);
    const refused = await runNix('nix-store', ['--add', file]);
    const nixWould = /should be '([^']+)'/.exec(refused.stderr)?.[1];
    assert.ok(!refused.ok && nixWould, `Nix refuses the forged derivation itself: ${refused.stderr}`);

    const forged = formatStorePath(makeTextPath(name, sha256Of(Buffer.from(text)), []));
    const nar = await dump(file);
    const compressed = await compress(nar);
    const closure: StagedUpload = {
      drvPath: forged,
      system: SYSTEM,
      kind: 'closure',
      outputs: [{ name: 'out', path: forged, narHash: toNarHash(sha256Of(nar)), narSize: nar.length, references: [], file: { size: compressed.length, sha256: formatHash(sha256Of(compressed), 'base32') } }],
    };
    for (const { key: objectKey, target } of (await signer.prepareUpload(closure)).uploads) if (target.kind === 'put') await uploadToUrl(objectKey, compressed, target);
    await signer.publish(closure);
    assert.ok(await test.backend.head(narInfoKey(forged)), 'the forged .drv is published as a text path');

    await assertRefused(lie(forged, dep, await dump(dep.path)), new RegExp(`places its output 'out' at ${dep.path}, not at ${nixWould} where Nix would`));
  });

  it('refuses a fixed-output path with other contents than its hash, and signs the right ones', async () => {
    const wrongFile = join(tmp.dir, 'wrong');
    await writeFile(wrongFile, `wrong ${token}\n`);
    const wrongNar = await dump(wrongFile);
    const wrong = await lie(fodDrv, { name: 'out', path: fodPath, narHash: toNarHash(sha256Of(wrongNar)), narSize: wrongNar.length, references: [] }, wrongNar);
    await assertRefused(signer.publish(wrong), /fixed-output hash mismatch/);
    await assertNothingWritten(wrong);

    const rightNar = await dump(join(tmp.dir, 'right'));
    const right = await lie(fodDrv, { name: 'out', path: fodPath, narHash: toNarHash(sha256Of(rightNar)), narSize: rightNar.length, references: [] }, rightNar);
    const outcome = await signer.publish(right);
    assert.deepEqual(outcome.outputs.map((output) => output.path), [fodPath]);
  });

  it('after the lies, the honest build publishes, a second upload replaces nothing, and Nix substitutes it', async () => {
    const staged = await host.stageOutputs({ drvPath: depDrv, system: SYSTEM, outputs: [dep] });
    await host.uploadOutputs({ drvPath: depDrv, plan: await signer.prepareUpload(staged) });
    assert.deepEqual((await signer.publish(staged)).outputs.map((output) => output.path), [dep.path]);
    const narInfo = await test.backend.read(narInfoKey(dep.path));
    const narBytes = (await test.backend.read(narKey(dep.narHash)))!;

    const nar = await dump(dep.path);
    const other = Buffer.from(nar);
    other[other.lastIndexOf(Buffer.from('dependency'))] = 'D'.charCodeAt(0);
    const second = await lie(depDrv, { ...dep, narHash: toNarHash(sha256Of(other)) }, other);
    const outcome = await signer.publish(second);
    assert.deepEqual(outcome.differing, [dep.path], 'the second upload is reported as differing');
    assert.deepEqual(await test.backend.read(narInfoKey(dep.path)), narInfo, 'the narinfo is unchanged');
    assert.deepEqual(await test.backend.read(narKey(dep.narHash)), narBytes, 'the NAR is unchanged');
    assert.ok((await assertEveryNarInfoHasItsNar(test.backend)) >= 2);

    const server = await serveCache(test.backend);
    try {
      const store = join(tmp.dir, 'client-store');
      const result = await substitute(store, [dep.path, fodPath], server.url, formatKey(key.publicKey));
      assert.ok(result.ok, result.stderr);
    } finally {
      await server.close();
    }
  });
});
