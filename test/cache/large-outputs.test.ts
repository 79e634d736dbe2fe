/**
 * An output above the multipart threshold goes to S3 in parts through the real builder upload and
 * signer: the plan holds one presigned URL per part, an upload cut short after its first part is
 * resumed with the parts still missing, the signer joins and verifies the parts and moves the
 * object into place, and the real `nix-store` substitutes the output. Thresholds are lowered so
 * that a 13 MiB output takes three parts (S3's smallest part is 5 MiB).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUploadActivities, prepareStaging } from '../../activities/builder/upload.ts';
import { initialiseCache } from '../../activities/signer/index.ts';
import type { UploadPlan } from '../../activities/types.ts';
import { narInfoKey } from '../../cache/layout.ts';
import { formatKey, generateKeyPair } from '../../daemon/core/signing.ts';
import { NIX_OPTIONS, nonce, pathInfos, runNix, s3Backend, serveCache, signerOnTestStore, substitute, tempDir, type TestBackend } from './helpers.ts';

const MiB = 1024 ** 2;

describe('large outputs in parts', () => {
  let test: TestBackend;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir('large');
    test = await s3Backend({ multipart: { threshold: 6 * MiB, partSize: 5 * MiB, copyLimit: 8 * MiB, copyPartSize: 5 * MiB } });
    await initialiseCache(test.backend);
  });
  after(async () => {
    await test?.close();
    await tmp?.remove();
  });

  it('uploads, resumes, verifies and serves an output of three parts', async () => {
    const token = nonce();
    const file = join(tmp.dir, `large-${token}.nix`);
    await writeFile(
      file,
      `builtins.derivation { name = "large-${token}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
  args = [ "-c" "head -c ${13 * MiB} /dev/urandom > $out" ]; }\n`,
    );
    const built = await runNix('nix-build', [...NIX_OPTIONS, '--no-out-link', file]);
    assert.ok(built.ok, built.stderr);
    const drv = await runNix('nix-instantiate', [...NIX_OPTIONS, file]);
    const drvPath = drv.stdout.trim();
    const [output] = await pathInfos([built.stdout.trim()]);

    const key = generateKeyPair('harmonia-test-large-1');
    const signer = signerOnTestStore(test.backend, key.secretKey);
    const stagingDir = join(tmp.dir, 'staging');
    await prepareStaging(stagingDir);
    const host = createUploadActivities({ stagingDir });
    try {
      const staged = await host.stageOutputs({ drvPath, system: 'x86_64-linux', outputs: [output!] });
      const plan = await signer.prepareUpload(staged);
      const [nar] = plan.uploads;
      assert.ok(nar?.target.kind === 'multipart', 'the NAR goes in parts');
      assert.equal(nar.target.parts.length, 3);

      // The connection breaks at the second part: the first part has landed.
      const broken: UploadPlan = {
        uploads: [{ key: nar.key, target: { ...nar.target, parts: nar.target.parts.map((part, i) => (i === 1 ? { ...part, url: part.url.replace(/X-Amz-Signature=[0-9a-f]+/, `X-Amz-Signature=${'0'.repeat(64)}`) } : part)) } }],
      };
      await assert.rejects(host.uploadOutputs({ drvPath, plan: broken }), /PUT of .*part 2 of 3/);

      const resumed = await signer.prepareUpload(staged);
      const [again] = resumed.uploads;
      assert.ok(again?.target.kind === 'multipart');
      assert.deepEqual(
        again.target.parts.map((part) => part.number),
        [2, 3],
        'only the parts that did not land are issued again',
      );
      await host.uploadOutputs({ drvPath, plan: resumed });
      assert.deepEqual((await signer.publish(staged)).outputs.map((published) => published.path), [output!.path]);
      assert.ok(await test.backend.head(narInfoKey(output!.path)));

      const server = await serveCache(test.backend);
      try {
        const result = await substitute(join(tmp.dir, 'client'), [output!.path], server.url, formatKey(key.publicKey));
        assert.ok(result.ok, result.stderr);
      } finally {
        await server.close();
      }
    } finally {
      await signer.pool.close();
    }
  });
});
