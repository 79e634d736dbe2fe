/**
 * The publish sequence without Temporal: the builder's upload activities stage and upload real
 * outputs built by nix-build, the signer issues targets, verifies and signs; the real `nix-store`
 * then substitutes them from our HTTP server into a store that never held them — for both backends.
 * Nix refuses a wrong key and a tampered NAR; `nix copy --from` and `nix-store --read-log` work.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { buildLogPath, createUploadActivities, prepareStaging, type HostUploads } from '../../activities/builder/upload.ts';
import { initialiseCache, UPLOAD_MISSING } from '../../activities/signer/index.ts';
import type { StagedUpload } from '../../activities/types.ts';
import { narInfoKey } from '../../cache/layout.ts';
import { formatKey, generateKeyPair } from '../../daemon/core/signing.ts';
import { UPLOAD_EXPIRED } from '../../workflows/definitions.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import { assertEveryNarInfoHasItsNar, buildOutputs, localBackend, NIX_COMMAND, runNix, s3Backend, serveCache, signerOnTestStore, substitute, tempDir, type TestBackend } from './helpers.ts';

const SYSTEM = 'x86_64-linux';

/** A stored object's bytes with one byte of the decompressed NAR changed, recompressed. */
async function tamper(compressed: Buffer): Promise<Buffer> {
  const nar = (await execa('zstd', ['-d', '-c'], { input: compressed, encoding: 'buffer' })).stdout as Uint8Array;
  const changed = Buffer.from(nar);
  const at = changed.lastIndexOf(Buffer.from('dependency'));
  changed[at] = 'D'.charCodeAt(0);
  return Buffer.from((await execa('zstd', ['-c', '-q'], { input: changed, encoding: 'buffer' })).stdout as Uint8Array);
}

for (const open of [localBackend, s3Backend]) {
  describe(`publishing to ${open === localBackend ? 'a local directory' : 'S3 (SeaweedFS)'}`, () => {
    let test: TestBackend;
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    let built: Awaited<ReturnType<typeof buildOutputs>>;
    let server: Awaited<ReturnType<typeof serveCache>>;
    let signer: ReturnType<typeof signerOnTestStore>;
    let host: HostUploads;
    let stagingDir: string;
    const key = generateKeyPair('harmonia-test-cache-1');
    const trusted = formatKey(key.publicKey);

    const publish = async (drvPath: string, outputs: BuiltOutput[]): Promise<StagedUpload> => {
      const staged = await host.stageOutputs({ drvPath, system: SYSTEM, outputs });
      await host.uploadOutputs({ drvPath, plan: await signer.prepareUpload(staged) });
      await signer.publish(staged);
      return staged;
    };

    before(async () => {
      tmp = await tempDir('publish');
      test = await open();
      built = await buildOutputs(tmp.dir);
      await initialiseCache(test.backend);
      signer = signerOnTestStore(test.backend, key.secretKey);
      stagingDir = join(tmp.dir, 'staging');
      await prepareStaging(stagingDir);
      host = createUploadActivities({ stagingDir });
      await writeFile(buildLogPath(stagingDir, built.topDrv), 'configuring\nbuilt top\n');
      await publish(built.depDrv, [built.dep]);
      await publish(built.topDrv, [built.top]);
      server = await serveCache(test.backend);
    });
    after(async () => {
      await server?.close();
      await signer?.pool.close();
      await test?.close();
      await tmp?.remove();
    });

    it('is substituted by the real nix-store into an empty store, references first', async () => {
      const root = join(tmp.dir, 'fresh-store');
      const result = await substitute(root, [built.top.path], server.url, trusted);
      assert.ok(result.ok, result.stderr);
      for (const path of [built.top.path, built.dep.path]) {
        const diff = await execa('diff', ['-r', '--no-dereference', path, join(root, path)], { reject: false });
        assert.equal(diff.exitCode, 0, `${path} differs after substitution: ${diff.stdout}`);
      }
      assert.equal(await assertEveryNarInfoHasItsNar(test.backend), 2);
    });

    it('is refused by Nix when the key is not trusted', async () => {
      const other = formatKey(generateKeyPair('someone-else-1').publicKey);
      const result = await substitute(join(tmp.dir, 'untrusting-store'), [built.dep.path], server.url, other);
      assert.equal(result.ok, false);
      assert.match(result.stderr, /not signed by any of the keys/);
    });

    it('serves `nix copy --from` and the build log to nix-store --read-log', async () => {
      const copied = await runNix('nix', [...NIX_COMMAND, 'copy', '--from', server.url, '--to', join(tmp.dir, 'copy-store'), built.top.path, '--option', 'trusted-public-keys', trusted, '--option', 'build-users-group', '']);
      assert.ok(copied.ok, copied.stderr);
      assert.equal(await readFile(join(tmp.dir, 'copy-store', built.top.path, 'uses'), 'utf8'), `${built.dep.path}\n`);
      const log = await runNix('nix-store', ['--read-log', '--store', server.url, built.topDrv]);
      assert.ok(log.ok, log.stderr);
      assert.equal(log.stdout, 'configuring\nbuilt top');
    });

    it('serves the .ls listing Nix writes for the path, written when it was signed', async () => {
      const dir = join(tmp.dir, `listing-${test.name}`);
      const copied = await runNix('nix', [...NIX_COMMAND, 'copy', '--to', `file://${dir}?compression=none&write-nar-listing=true`, built.top.path]);
      assert.ok(copied.ok, copied.stderr);
      const hash = narInfoKey(built.top.path).slice(0, -'.narinfo'.length);
      const expected = JSON.parse(await readFile(join(dir, `${hash}.ls`), 'utf8'));
      const response = await fetch(`${server.url}/${hash}.ls`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.deepEqual(JSON.parse(await response.text()), expected);
      assert.equal((await fetch(`${server.url}/${'0'.repeat(32)}.ls`)).status, 404);
    });

    it('never writes a narinfo whose NAR was not uploaded', async () => {
      const again = await buildOutputs(tmp.dir);
      const staged = await host.stageOutputs({ drvPath: again.depDrv, system: SYSTEM, outputs: [again.dep] });
      assert.equal((await signer.prepareUpload(staged)).uploads.length, 1);
      await assert.rejects(signer.publish(staged), (error: unknown) => error instanceof ApplicationFailure && error.type === UPLOAD_MISSING);
      assert.equal(await test.backend.head(narInfoKey(again.dep.path)), undefined);
    });

    it('keeps the first narinfo of a path and reports a build that hashed differently', async () => {
      const staged = await host.stageOutputs({ drvPath: built.topDrv, system: SYSTEM, outputs: [built.top] });
      const depStaged = await host.stageOutputs({ drvPath: built.depDrv, system: SYSTEM, outputs: [built.dep] });
      // A second builder whose `top` came out as other bytes (here: those of dep, already stored).
      const odd = { ...depStaged.outputs[0]!, name: 'out', path: built.top.path };
      const outcome = await signer.publish({ ...staged, outputs: [odd] });
      assert.deepEqual(outcome.differing, [built.top.path]);
      assert.equal(outcome.outputs[0]!.narHash, built.top.narHash, 'the canonical hash is the first one');
    });

    it('fails an upload whose target expired with the typed failure the workflow retries on', async () => {
      const again = await buildOutputs(tmp.dir);
      const hasty = signerOnTestStore(test.backend, key.secretKey, { uploadLifetimeMs: 1000 });
      const staged = await host.stageOutputs({ drvPath: again.depDrv, system: SYSTEM, outputs: [again.dep] });
      const plan = await hasty.prepareUpload(staged);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await assert.rejects(host.uploadOutputs({ drvPath: again.depDrv, plan }), (error: unknown) => error instanceof ApplicationFailure && error.type === UPLOAD_EXPIRED);
      // Fresh targets from the signer go through.
      await host.uploadOutputs({ drvPath: again.depDrv, plan: await signer.prepareUpload(staged) });
      assert.equal((await signer.publish(staged)).outputs[0]!.narHash, again.dep.narHash);
      await hasty.pool.close();
    });

    it('is refused by Nix when the stored NAR was tampered with', async () => {
      const info = (await test.backend.get(narInfoKey(built.dep.path)))!;
      const chunks: Buffer[] = [];
      for await (const chunk of info.body) chunks.push(chunk as Buffer);
      const url = /^URL: (.*)$/m.exec(Buffer.concat(chunks).toString())![1]!;
      const stored = await test.backend.get(url);
      const original: Buffer[] = [];
      for await (const chunk of stored!.body) original.push(chunk as Buffer);
      await test.backend.delete([url]);
      await test.backend.put(url, await tamper(Buffer.concat(original)), { contentType: 'application/x-nix-nar' });
      let result = await substitute(join(tmp.dir, 'victim-store'), [built.dep.path], server.url, trusted);
      // Nix 2.8 now and then fails to open a tiny zstd NAR before its body arrived (a refusal too,
      // but not the one under test): ask once more.
      if (/Truncated zstd input/.test(result.stderr)) result = await substitute(join(tmp.dir, 'victim-store'), [built.dep.path], server.url, trusted);
      assert.equal(result.ok, false);
      assert.match(result.stderr, /hash mismatch/);
    });
  });
}
