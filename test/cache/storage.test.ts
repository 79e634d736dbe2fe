/**
 * Both storage backends on real storage (a directory; a bucket on SeaweedFS) behave alike, and an
 * upload target admits exactly the announced bytes: SeaweedFS refuses a presigned PUT of another
 * length, checksum or key, or after expiry; the local directory discards a staged file that
 * does not hash as announced.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { readText } from '../../cache/backend-reader.ts';
import { InvalidKeyError, UploadMismatchError } from '../../cache/errors.ts';
import type { UploadSpec, UploadTarget } from '../../cache/types.ts';
import { formatHash } from '../../daemon/core/hash.ts';
import { localBackend, s3Backend, type TestBackend } from './helpers.ts';

const sha256 = (bytes: Uint8Array): string => formatHash({ algorithm: 'sha256', digest: new Uint8Array(createHash('sha256').update(bytes).digest()) }, 'base32');
const narKeyFor = (): string => `nar/${formatHash({ algorithm: 'sha256', digest: randomBytes(32) }, 'base32', false)}.nar.zst`;

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Delivers `body` to a target as a builder would: PUT for S3, a file for a local cache. */
async function deliver(target: UploadTarget, body: Uint8Array): Promise<{ status: number; text: string }> {
  if (target.kind === 'file') {
    await writeFile(target.path, body);
    return { status: 200, text: '' };
  }
  const response = await fetch(target.url, { method: 'PUT', body, headers: target.headers });
  return { status: response.status, text: await response.text() };
}

for (const open of [localBackend, s3Backend]) {
  describe(`${open.name === 'localBackend' ? 'local directory' : 'S3 (SeaweedFS)'} backend`, () => {
    let test: TestBackend;
    before(async () => {
      test = await open();
      await test.backend.check();
    });
    after(async () => test?.close());

    it('stores, lists, reads ranges of and deletes objects; refuses keys outside the layout', async () => {
      const { backend } = test;
      const key = narKeyFor();
      const body = randomBytes(5000);
      assert.equal(await backend.head(key), undefined);
      assert.equal(await backend.put(key, body, { contentType: 'application/x-nix-nar' }), true);
      assert.equal((await backend.head(key))?.size, 5000);
      assert.deepEqual(await collect((await backend.get(key))!.body), body);

      const middle = (await backend.get(key, { start: 100, end: 199 }))!;
      assert.deepEqual([middle.start, middle.end, middle.object.size], [100, 199, 5000]);
      assert.deepEqual(await collect(middle.body), body.subarray(100, 200));
      const tail = (await backend.get(key, { start: 4990 }))!;
      assert.deepEqual(await collect(tail.body), body.subarray(4990));
      const past = (await backend.get(key, { start: 6000 }))!;
      assert.ok(past.start >= 5000, 'a range past the end is reported as such');
      past.body.destroy();

      const listed = [];
      for await (const object of backend.list('nar/')) listed.push(object.key);
      assert.deepEqual(listed, [key]);
      await backend.delete([key]);
      assert.equal(await backend.head(key), undefined);
      await assert.rejects(backend.put('../escape', body, { contentType: 'x' }), InvalidKeyError);
      await assert.rejects(backend.head('nar/not-a-hash.nar.zst'), InvalidKeyError);
    });

    it('keeps the first narinfo written when asked to (first writer wins)', async () => {
      const key = `${formatHash({ algorithm: 'sha1', digest: randomBytes(20) }, 'base32', false)}.narinfo`;
      assert.equal(await test.backend.put(key, Buffer.from('first\n'), { contentType: 'text/x-nix-narinfo', ifAbsent: true }), true);
      assert.equal(await test.backend.put(key, Buffer.from('second\n'), { contentType: 'text/x-nix-narinfo', ifAbsent: true }), false);
      assert.equal(await readText(test.backend, key), 'first\n');
      await test.backend.delete([key]);
    });

    it('commits an upload that matches its announcement, and never replaces an existing object', async () => {
      const { backend } = test;
      const body = randomBytes(3000);
      const spec: UploadSpec = { key: narKeyFor(), size: body.length, sha256: sha256(body) };
      const target = await backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 });
      assert.equal(await backend.commitUpload(spec), undefined, 'nothing to commit before the upload');
      const reply = await deliver(target, body);
      assert.equal(reply.status, 200, reply.text);
      const stored = await backend.commitUpload(spec);
      assert.deepEqual([stored?.size, stored?.sha256], [3000, spec.sha256]);
      assert.deepEqual(await collect((await backend.get(spec.key))!.body), body);

      // Another upload of the same key with other bytes leaves the first one in place.
      const other = randomBytes(3000);
      const otherSpec = { ...spec, sha256: sha256(other) };
      const again = await deliver(await backend.uploadTarget(otherSpec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 }), other);
      if (test.name === 's3') assert.equal(again.status, 412, again.text);
      assert.deepEqual((await backend.commitUpload(otherSpec))?.sha256, spec.sha256);
      assert.deepEqual(await collect((await backend.get(spec.key))!.body), body);
    });

    it('admits nothing but the announced bytes', async () => {
      const { backend } = test;
      const body = randomBytes(2000);
      const spec: UploadSpec = { key: narKeyFor(), size: body.length, sha256: sha256(body) };
      const target = await backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 });
      const tampered = Buffer.from(body);
      tampered[7] = tampered[7]! ^ 1;
      if (target.kind === 'put') {
        // The length is a signed header, the checksum is signed into the URL and compared by SeaweedFS.
        const longer = await deliver(target, Buffer.concat([body, Buffer.from('x')]));
        assert.equal(longer.status, 403, longer.text);
        const wrong = await deliver(target, tampered);
        assert.equal(wrong.status, 400, wrong.text);
        assert.match(wrong.text, /BadDigest/);
        const elsewhere = await deliver({ ...target, url: target.url.replace(spec.key, narKeyFor()) }, body);
        assert.equal(elsewhere.status, 403, elsewhere.text);
        assert.equal(await backend.commitUpload(spec), undefined);
      } else {
        await deliver(target, tampered);
        await assert.rejects(backend.commitUpload(spec), UploadMismatchError);
        assert.equal(await backend.head(spec.key), undefined, 'a mismatching upload never becomes visible');
      }
    });

    if (open === s3Backend) {
      it('refuses a presigned URL after it expires', async () => {
        const body = randomBytes(100);
        const spec = { key: narKeyFor(), size: body.length, sha256: sha256(body) };
        const target = await test.backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 1000 });
        await new Promise((resolve) => setTimeout(resolve, 2100));
        const reply = await deliver(target, body);
        assert.equal(reply.status, 403, reply.text);
        assert.match(reply.text, /expired/i);
      });
    }
  });
}
