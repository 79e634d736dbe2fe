/**
 * Round trip through the SeaweedFS S3 gateway started by test/run.ts, and the properties
 * the signer relies on: credentials are enforced, and a presigned PUT URL is good for
 * one key, one size and one checksum, and only until it expires.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { requireTestS3 } from '../helpers/env.ts';

const s3 = requireTestS3();

function clientWith(secretAccessKey: string, accessKeyId = s3.accessKeyId): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    // The SDK's default adds a CRC32 of the *empty* body to presigned URLs, which the
    // server then checks against the upload; checksums are set explicitly instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
}

function sha256Base64(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('base64');
}

async function readObject(client: S3Client, key: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

async function put(url: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'PUT', body, headers, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, text: await response.text() };
}

describe('SeaweedFS S3 gateway', () => {
  const client = clientWith(s3.secretAccessKey);
  after(() => client.destroy());

  it('stores and returns an object with our credentials', async () => {
    const key = `round-trip/${randomUUID()}`;
    const body = randomBytes(3000);
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
    assert.deepEqual(await readObject(client, key), body);
  });

  it('refuses a wrong secret, an unknown key and anonymous access', async () => {
    const key = `refused/${randomUUID()}`;
    for (const bad of [clientWith('not-the-secret'), clientWith(s3.secretAccessKey, 'UNKNOWNKEY')]) {
      await assert.rejects(bad.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'x' })), (error: { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(error.$metadata?.httpStatusCode, 403);
        return true;
      });
      bad.destroy();
    }
    assert.equal((await fetch(`${s3.endpoint}/${s3.bucket}/${key}`, { method: 'PUT', body: 'x' })).status, 403);
    assert.equal((await fetch(`${s3.endpoint}/${s3.bucket}/`)).status, 403);
  });

  it('accepts a plain fetch to a presigned PUT URL of the right size and checksum', async () => {
    const key = `presigned/${randomUUID()}`;
    const body = randomBytes(5000);
    const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: s3.bucket, Key: key, ContentLength: body.length, ChecksumSHA256: sha256Base64(body) }), { expiresIn: 60 });
    const reply = await put(url, body);
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(await readObject(client, key), body);
  });

  it('refuses a presigned PUT of another size, another content, or to another key', async () => {
    const key = `presigned/${randomUUID()}`;
    const body = randomBytes(1000);
    const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: s3.bucket, Key: key, ContentLength: body.length, ChecksumSHA256: sha256Base64(body) }), { expiresIn: 60 });

    // The size is a signed header: another length breaks the signature.
    const longer = await put(url, Buffer.concat([body, Buffer.from('!')]));
    assert.equal(longer.status, 403, longer.text);
    assert.match(longer.text, /SignatureDoesNotMatch/);

    // The checksum travels in the signed query; the server compares it with what arrives.
    const tampered = Buffer.from(body);
    tampered[0] = tampered[0]! ^ 0xff;
    const wrong = await put(url, tampered);
    assert.equal(wrong.status, 400, wrong.text);
    assert.match(wrong.text, /BadDigest/);

    const elsewhere = await put(url.replace(encodeURI(key), encodeURI(`${key}-other`)), body);
    assert.equal(elsewhere.status, 403, elsewhere.text);

    await assert.rejects(readObject(client, key), { name: 'NoSuchKey' });
  });

  it('refuses a presigned PUT URL after it expires', async () => {
    const key = `presigned/${randomUUID()}`;
    const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn: 1 });
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const reply = await put(url, Buffer.from('late'));
    assert.equal(reply.status, 403, reply.text);
    assert.match(reply.text, /expired/i);
  });
});
