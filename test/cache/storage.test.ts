/**
 * Both storage backends on real storage (a directory; a bucket on SeaweedFS) behave alike, and an
 * upload target admits exactly the announced bytes: SeaweedFS refuses a presigned PUT of another
 * length, checksum or key, or after expiry; the local directory discards a staged file that
 * does not hash as announced. Build logs alone are replaced by a newer upload.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { readText } from '../../cache/backend-reader.ts';
import { InvalidKeyError } from '../../cache/errors.ts';
import { stagingKey } from '../../cache/layout.ts';
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
  if (target.kind === 'multipart') throw new Error('a multipart target is delivered part by part');
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

    it('stages an upload apart from the served layout, promotes it, and never replaces an existing object', async () => {
      const { backend } = test;
      const body = randomBytes(3000);
      const spec: UploadSpec = { key: narKeyFor(), size: body.length, sha256: sha256(body) };
      const target = await backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 });
      assert.equal(await backend.stagedUpload(spec), undefined, 'nothing staged before the upload');
      const reply = await deliver(target, body);
      assert.equal(reply.status, 200, reply.text);
      assert.equal((await backend.stagedUpload(spec))?.size, 3000);
      assert.equal(await backend.head(spec.key), undefined, 'a staged upload is not served');
      assert.deepEqual(await collect((await backend.readStaged(spec))!), body);
      assert.equal(await backend.promoteUpload(spec), true);
      assert.deepEqual(await collect((await backend.get(spec.key))!.body), body);
      assert.equal(await backend.stagedUpload(spec), undefined, 'promoting removes the staging');

      // Another upload for the same key with other bytes leaves the first one in place.
      const other = randomBytes(3000);
      const otherSpec = { ...spec, sha256: sha256(other) };
      const again = await deliver(await backend.uploadTarget(otherSpec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 }), other);
      assert.equal(again.status, 200, again.text);
      assert.equal(await backend.promoteUpload(otherSpec), false);
      assert.deepEqual(await collect((await backend.get(spec.key))!.body), body);
      assert.equal(await backend.stagedUpload(otherSpec), undefined);
    });

    it('replaces a build log with a newer upload, where NARs keep their first writer', async () => {
      const { backend } = test;
      const key = `log/${formatHash({ algorithm: 'sha1', digest: randomBytes(20) }, 'base32', false)}-flaky.drv`;
      const options = { contentType: 'text/plain; charset=utf-8', contentEncoding: 'zstd', lifetimeMs: 60_000 };
      for (const text of ['the failed attempt\n', 'the successful rebuild, a longer log\n']) {
        const body = Buffer.from(text);
        const spec: UploadSpec = { key, size: body.length, sha256: sha256(body) };
        const reply = await deliver(await backend.uploadTarget(spec, options), body);
        assert.equal(reply.status, 200, reply.text);
        assert.equal(await backend.promoteUpload(spec), true);
        assert.equal(await backend.stagedUpload(spec), undefined);
        assert.equal((await collect((await backend.get(key))!.body)).toString(), text);
      }
      const stream = (await backend.get(key))!;
      stream.body.destroy();
      assert.equal(stream.contentEncoding, 'zstd', 'the replacement keeps the encoding Nix decodes');
      await backend.delete([key]);
    });

    it('admits nothing but the announced bytes, and discards a refused upload', async () => {
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
        const elsewhere = await deliver({ ...target, url: target.url.replace(stagingKey(spec), stagingKey({ ...spec, key: narKeyFor() })) }, body);
        assert.equal(elsewhere.status, 403, elsewhere.text);
        const final = await deliver({ ...target, url: target.url.replace(stagingKey(spec), spec.key) }, body);
        assert.equal(final.status, 403, 'the URL cannot be turned to the final name');
        assert.equal(await backend.stagedUpload(spec), undefined);
      } else {
        // A local directory takes any bytes; the signer reads them back before promoting (test/cache/signer-verifies.test.ts).
        await deliver(target, tampered);
        assert.equal(await backend.head(spec.key), undefined, 'an upload never becomes visible by itself');
      }
      await deliver(target, body);
      await backend.discardUpload(spec);
      assert.equal(await backend.stagedUpload(spec), undefined);
      assert.equal(await backend.head(spec.key), undefined);
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

describe('S3 (SeaweedFS) multipart uploads', () => {
  const MiB = 1024 ** 2;
  let test: TestBackend;
  before(async () => {
    test = await s3Backend({ multipart: { threshold: 6 * MiB, partSize: 5 * MiB, copyLimit: 8 * MiB, copyPartSize: 5 * MiB } });
  });
  after(async () => test?.close());

  const putPart = async (url: string, body: Uint8Array): Promise<number> => (await fetch(url, { method: 'PUT', body })).status;

  it('uploads a large object in parts, resumes with the parts still missing, and promotes it by a copy in parts', async () => {
    const { backend } = test;
    const body = randomBytes(13 * MiB);
    const spec: UploadSpec = { key: narKeyFor(), size: body.length, sha256: sha256(body) };
    const lifetime = { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 };
    const first = await backend.uploadTarget(spec, lifetime);
    assert.equal(first.kind, 'multipart');
    if (first.kind !== 'multipart') return;
    assert.deepEqual(first.parts.map((part) => part.number), [1, 2, 3]);
    assert.equal(first.partSize, 5 * MiB);
    const part = (n: number): Buffer => body.subarray((n - 1) * first.partSize, Math.min(n * first.partSize, body.length));

    assert.equal(await putPart(first.parts[0]!.url, part(1)), 200);
    assert.equal(await putPart(first.parts[1]!.url, part(2).subarray(1)), 403, 'a part of another length is refused (its length is signed)');
    assert.equal(await backend.stagedUpload(spec), undefined, 'an upload with parts missing is not staged');

    const resumed = await backend.uploadTarget(spec, lifetime);
    assert.ok(resumed.kind === 'multipart');
    assert.deepEqual(resumed.parts.map((p) => p.number), [2, 3], 'only the missing parts are issued again');
    for (const p of resumed.parts) assert.equal(await putPart(p.url, part(p.number)), 200);

    assert.equal((await backend.stagedUpload(spec))?.size, body.length);
    assert.equal(await backend.head(spec.key), undefined);
    assert.deepEqual(await collect((await backend.readStaged(spec))!), body);
    assert.equal(await backend.promoteUpload(spec), true);
    const stored = (await backend.get(spec.key))!;
    assert.equal(stored.object.size, body.length);
    assert.deepEqual(await collect(stored.body), body);
  });

  it('discards an unfinished upload and removes stale ones', async () => {
    const { backend } = test;
    const body = randomBytes(7 * MiB);
    const spec: UploadSpec = { key: narKeyFor(), size: body.length, sha256: sha256(body) };
    const target = await backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 });
    assert.ok(target.kind === 'multipart');
    assert.equal(await putPart(target.parts[0]!.url, body.subarray(0, target.partSize)), 200);
    await backend.discardUpload(spec);
    const fresh = await backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 });
    assert.ok(fresh.kind === 'multipart');
    assert.deepEqual(fresh.parts.map((p) => p.number), [1, 2], 'after a discard the upload starts over');
    assert.ok((await backend.removeStaleUploads(new Date(Date.now() + 60_000))) >= 1);
    const again = await backend.uploadTarget(spec, { contentType: 'application/x-nix-nar', lifetimeMs: 60_000 });
    assert.ok(again.kind === 'multipart');
    assert.equal(again.parts.length, 2);
    await backend.discardUpload(spec);
  });
});
