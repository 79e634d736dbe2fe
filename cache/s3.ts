/**
 * A binary cache in an S3 bucket (tested on SeaweedFS). Only the signer and the HTTP server hold
 * credentials; builders get presigned PUT URLs to a staging key (cache/layout.ts `stagingKey`),
 * each scoped to one length (a signed header), one SHA-256 checksum (`x-amz-checksum-sha256`,
 * compared by the storage with what arrives) and `If-None-Match: *`; a large upload gets one URL
 * per part (s3-multipart.ts). The signer reads the staged bytes back and copies them to their
 * final key, which no builder can write.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Credentials } from '../config/secrets.ts';
import { decodeBase64, formatHash, parsePrefixedHash } from '../daemon/core/hash.ts';
import { CONNECT_TIMEOUT_MS, IDLE_TIMEOUT_MS } from '../lib/http.ts';
import { classifyKey, isReplaceable, stagingKey } from './layout.ts';
import { abortMultipart, completeMultipart, copyInParts, copySource, DEFAULT_MULTIPART, multipartTarget, type MultipartOptions } from './s3-multipart.ts';
import { CacheStorageError, InvalidKeyError } from './errors.ts';
import type { ByteRange, CacheBackend, ObjectStream, StoredObject, UploadSpec, UploadTarget } from './types.ts';

export interface S3BackendOptions {
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  /** Static credentials; without them the SDK's default chain applies (environment, profile, instance role). */
  credentials?: S3Credentials;
  /** Connection and inactivity limits of every request (defaults CONNECT_TIMEOUT_MS and IDLE_TIMEOUT_MS, lib/http.ts). */
  timeouts?: { connectMs: number; idleMs: number };
  /** Where uploads and copies go in parts (defaults DEFAULT_MULTIPART). */
  multipart?: Partial<MultipartOptions>;
}

const DELETE_BATCH = 1000;

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** `sha256:<base32>` from S3's base64 checksum; composite multipart checksums (`…-N`) say nothing about the bytes. */
function fromS3Checksum(checksum: string | undefined): string | undefined {
  if (!checksum || !/^[A-Za-z0-9+/]{43}=$/.test(checksum)) return undefined;
  return formatHash({ algorithm: 'sha256', digest: decodeBase64(checksum) }, 'base32');
}

function toS3Checksum(sha256: string): string {
  return formatHash(parsePrefixedHash(sha256), 'base64', false);
}

export class S3Backend implements CacheBackend {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly multipart: MultipartOptions;

  constructor(options: S3BackendOptions) {
    this.bucket = options.bucket;
    this.multipart = { ...DEFAULT_MULTIPART, ...options.multipart };
    this.description = `s3://${options.bucket}${options.endpoint ? ` at ${options.endpoint}` : ''}`;
    this.client = new S3Client({
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // The SDK sets no timeouts: a storage that accepts and stays silent would hold a publish (and the
      // NAR it serves) forever. An inactivity limit rather than a total one, since an object may be gigabytes.
      requestHandler: { connectionTimeout: options.timeouts?.connectMs ?? CONNECT_TIMEOUT_MS, socketTimeout: options.timeouts?.idleMs ?? IDLE_TIMEOUT_MS },
      // The SDK's default would sign a CRC32 of the empty body into presigned URLs; checksums are explicit here.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private get scope(): { client: S3Client; bucket: string } {
    return { client: this.client, bucket: this.bucket };
  }

  private checked(key: string): string {
    if (!classifyKey(key)) throw new InvalidKeyError(key);
    return key;
  }

  private storageError(what: string, error: unknown): CacheStorageError {
    const status = statusOf(error);
    const hint = status === 403 ? ': check the credentials and their permissions on the bucket' : status === 404 ? ': does the bucket exist?' : '';
    return new CacheStorageError(`${what} in ${this.description} failed (${(error as Error).name}: ${(error as Error).message})${hint}`, { cause: error });
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      throw this.storageError('HEAD bucket', error);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  async head(key: string): Promise<StoredObject | undefined> {
    this.checked(key);
    try {
      const reply = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      const sha256 = fromS3Checksum(reply.ChecksumSHA256);
      return { key, size: reply.ContentLength ?? 0, lastModified: reply.LastModified ?? new Date(0), ...(sha256 ? { sha256 } : {}) };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.storageError(`HEAD ${key}`, error);
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    this.checked(key);
    try {
      const reply = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await reply.Body!.transformToByteArray());
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.storageError(`GET ${key}`, error);
    }
  }

  async get(key: string, range?: ByteRange): Promise<ObjectStream | undefined> {
    this.checked(key);
    const header = range ? `bytes=${range.start}-${range.end ?? ''}` : undefined;
    try {
      const reply = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(header ? { Range: header } : {}) }));
      const length = reply.ContentLength ?? 0;
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(reply.ContentRange ?? '');
      const size = contentRange ? Number(contentRange[3]) : length;
      const start = contentRange ? Number(contentRange[1]) : 0;
      return {
        object: { key, size, lastModified: reply.LastModified ?? new Date(0) },
        start,
        end: start + length - 1,
        body: reply.Body as Readable,
        ...(reply.ContentEncoding ? { contentEncoding: reply.ContentEncoding } : {}),
      };
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return undefined;
      if (status === 416) {
        // A range past the end: report the object with nothing to send, as the local backend does.
        const object = await this.head(key);
        if (!object) return undefined;
        return { object, start: object.size, end: object.size - 1, body: Readable.from([]) };
      }
      throw this.storageError(`GET ${key}`, error);
    }
  }

  async put(key: string, body: Uint8Array, options: { contentType: string; contentEncoding?: string; ifAbsent?: boolean }): Promise<boolean> {
    this.checked(key);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
          ...(options.contentEncoding ? { ContentEncoding: options.contentEncoding } : {}),
          ...(options.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return true;
    } catch (error) {
      if (options.ifAbsent && statusOf(error) === 412) return false;
      throw this.storageError(`PUT ${key}`, error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.checked(key);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((key) => ({ Key: key }));
      let reply;
      try {
        reply = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } }));
      } catch (error) {
        throw this.storageError(`deleting ${batch.length} objects`, error);
      }
      const failed = (reply.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new CacheStorageError(`deleting from ${this.description} failed for ${failed.map((e) => `${e.Key} (${e.Code})`).slice(0, 5).join(', ')}`);
      }
    }
  }

  async *list(prefix = ''): AsyncIterable<StoredObject> {
    try {
      for await (const page of paginateListObjectsV2({ client: this.client, pageSize: 1000 }, { Bucket: this.bucket, Prefix: prefix })) {
        for (const item of page.Contents ?? []) {
          if (item.Key && classifyKey(item.Key)) yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified ?? new Date(0) };
        }
      }
    } catch (error) {
      throw this.storageError(`listing ${prefix || 'all objects'}`, error);
    }
  }

  async uploadTarget(spec: UploadSpec, options: { contentType: string; contentEncoding?: string; lifetimeMs: number }): Promise<UploadTarget> {
    this.checked(spec.key);
    const key = stagingKey(spec);
    const seconds = Math.max(1, Math.floor(options.lifetimeMs / 1000));
    const expiresAt = Date.now() + seconds * 1000;
    if (spec.size > this.multipart.threshold) {
      try {
        const target = await multipartTarget(this.scope, key, { ...options, size: spec.size, partSize: this.multipart.partSize, lifetimeSeconds: seconds });
        return { kind: 'multipart', ...target, expiresAt };
      } catch (error) {
        throw this.storageError(`preparing the multipart upload of ${key}`, error);
      }
    }
    const headers: Record<string, string> = { 'content-type': options.contentType, 'if-none-match': '*' };
    if (options.contentEncoding) headers['content-encoding'] = options.contentEncoding;
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ContentLength: spec.size,
      ChecksumSHA256: toS3Checksum(spec.sha256),
      ContentType: options.contentType,
      IfNoneMatch: '*',
      ...(options.contentEncoding ? { ContentEncoding: options.contentEncoding } : {}),
    });
    const url = await getSignedUrl(this.client, command, { expiresIn: seconds });
    return { kind: 'put', url, headers, expiresAt };
  }

  async stagedUpload(spec: UploadSpec): Promise<StoredObject | undefined> {
    const key = stagingKey(spec);
    const staged = await this.head(key);
    if (staged || spec.size <= this.multipart.threshold) return staged;
    try {
      if (!(await completeMultipart(this.scope, key, spec.size))) return undefined;
    } catch (error) {
      throw this.storageError(`completing the multipart upload of ${key}`, error);
    }
    return this.head(key);
  }

  async readStaged(spec: UploadSpec): Promise<Readable | undefined> {
    return (await this.get(stagingKey(spec)))?.body;
  }

  async promoteUpload(spec: UploadSpec): Promise<boolean> {
    const from = stagingKey(spec);
    const to = this.checked(spec.key);
    // Only the signer writes final keys, and only after verifying: an object there is kept,
    // unless it is a log, which the newer attempt's replaces (a copy over a key is atomic in S3).
    const existing = isReplaceable(to) ? undefined : await this.head(to);
    if (!existing) {
      try {
        const source = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: from }));
        const size = source.ContentLength ?? 0;
        if (size > this.multipart.copyLimit) {
          await copyInParts(this.scope, { key: from, size, contentType: source.ContentType, contentEncoding: source.ContentEncoding }, to, this.multipart.copyPartSize);
        } else {
          await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: copySource(this.bucket, from) }));
        }
      } catch (error) {
        throw this.storageError(`moving ${from} to ${to}`, error);
      }
    }
    await this.delete([from]);
    return !existing;
  }

  async discardUpload(spec: UploadSpec): Promise<void> {
    const key = stagingKey(spec);
    await this.delete([key]);
    try {
      await abortMultipart(this.scope, { key });
    } catch (error) {
      throw this.storageError(`aborting the multipart upload of ${key}`, error);
    }
  }

  async removeStaleUploads(before: Date): Promise<number> {
    const stale: string[] = [];
    for await (const object of this.list('incoming/')) if (object.lastModified < before) stale.push(object.key);
    await this.delete(stale);
    try {
      return stale.length + (await abortMultipart(this.scope, { prefix: 'incoming/', before }));
    } catch (error) {
      throw this.storageError('aborting stale multipart uploads', error);
    }
  }
}
