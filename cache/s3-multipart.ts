/**
 * Multipart transfers of the S3 backend: large uploads in parts (a single PUT may carry at most
 * 5 GB), and server-side copies of large staged objects to their final keys (a single copy may
 * carry at most 5 GB too).
 *
 * A multipart upload is resumable per part: its id is found again by listing the uploads in
 * progress under the staging key, its parts by listing them, so a target issued again after a
 * fault presigns only the parts still missing. The uploader holds one presigned URL per part, each
 * scoped to the part's length; the signer joins the parts (completion needs their ETags, which it
 * lists itself) and then reads the whole object back, since no checksum covers all of its bytes.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type Part,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** Where large transfers switch to parts, and how large a part is. */
export interface MultipartOptions {
  /** Uploads larger than this go in parts (S3 allows 5 GB in one PUT). */
  threshold: number;
  /** Bytes per uploaded part (S3: at least 5 MiB, at most 10,000 parts). */
  partSize: number;
  /** Copies larger than this go in parts (S3 allows 5 GB in one copy). */
  copyLimit: number;
  /** Bytes per copied part. */
  copyPartSize: number;
}

export const DEFAULT_MULTIPART: MultipartOptions = {
  threshold: 512 * 1024 ** 2,
  partSize: 64 * 1024 ** 2,
  copyLimit: 5 * 1024 ** 3,
  copyPartSize: 1024 ** 3,
};

/** S3's limit on the parts of one upload. */
const MAX_PARTS = 10_000;

interface Scope {
  client: S3Client;
  bucket: string;
}

/** The unfinished multipart uploads under a prefix, page by page. */
async function* uploadsUnder(scope: Scope, prefix: string): AsyncGenerator<{ key: string; uploadId: string; initiated: Date }> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await scope.client.send(
      new ListMultipartUploadsCommand({ Bucket: scope.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
    );
    for (const upload of page.Uploads ?? []) {
      if (upload.Key && upload.UploadId) yield { key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated ?? new Date(0) };
    }
    if (!page.IsTruncated) return;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

/** The unfinished multipart uploads of one key, newest first. */
async function uploadsOf(scope: Scope, key: string): Promise<Array<{ uploadId: string; initiated: Date }>> {
  const found: Array<{ uploadId: string; initiated: Date }> = [];
  for await (const upload of uploadsUnder(scope, key)) if (upload.key === key) found.push(upload);
  return found.sort((a, b) => b.initiated.getTime() - a.initiated.getTime());
}

async function partsOf(scope: Scope, key: string, uploadId: string): Promise<Part[]> {
  const parts: Part[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await scope.client.send(new ListPartsCommand({ Bucket: scope.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
    parts.push(...(page.Parts ?? []));
    if (!page.IsTruncated) break;
    marker = page.NextPartNumberMarker;
  }
  return parts;
}

/** The sizes of the parts of `size` bytes, in order. */
export function partSizes(size: number, partSize: number): number[] {
  const count = Math.max(1, Math.ceil(size / partSize));
  return Array.from({ length: count }, (_, i) => Math.min(partSize, size - i * partSize));
}

/** The part size for `size` bytes: the configured one, grown if the object would need more than S3's 10,000 parts. */
export function effectivePartSize(size: number, partSize: number): number {
  return Math.max(partSize, Math.ceil(size / MAX_PARTS));
}

/**
 * Presigned URLs for the parts of `key` not yet uploaded, reusing the upload in progress if there
 * is one: a target issued again resumes where the last one stopped.
 */
export async function multipartTarget(
  scope: Scope,
  key: string,
  spec: { size: number; contentType: string; contentEncoding?: string; partSize: number; lifetimeSeconds: number },
): Promise<{ partSize: number; parts: Array<{ number: number; url: string; headers: Record<string, string> }> }> {
  const partSize = effectivePartSize(spec.size, spec.partSize);
  const sizes = partSizes(spec.size, partSize);
  const [current] = await uploadsOf(scope, key);
  let uploadId = current?.uploadId;
  const done = new Set<number>();
  if (uploadId) {
    for (const part of await partsOf(scope, key, uploadId)) {
      if (part.PartNumber && part.Size === sizes[part.PartNumber - 1]) done.add(part.PartNumber);
    }
  } else {
    const created = await scope.client.send(
      new CreateMultipartUploadCommand({
        Bucket: scope.bucket,
        Key: key,
        ContentType: spec.contentType,
        ...(spec.contentEncoding ? { ContentEncoding: spec.contentEncoding } : {}),
      }),
    );
    uploadId = created.UploadId!;
  }
  const parts = [];
  for (const [index, size] of sizes.entries()) {
    const number = index + 1;
    if (done.has(number)) continue;
    const command = new UploadPartCommand({ Bucket: scope.bucket, Key: key, UploadId: uploadId, PartNumber: number, ContentLength: size });
    parts.push({ number, url: await getSignedUrl(scope.client, command, { expiresIn: spec.lifetimeSeconds }), headers: {} });
  }
  return { partSize, parts };
}

/**
 * Joins the parts of the upload in progress under `key` once parts 1…n hold exactly `size`
 * bytes; true when it did. Parts of the wrong size, or missing, leave it unfinished.
 */
export async function completeMultipart(scope: Scope, key: string, size: number): Promise<boolean> {
  for (const { uploadId } of await uploadsOf(scope, key)) {
    const parts = (await partsOf(scope, key, uploadId)).filter((part) => part.PartNumber).sort((a, b) => a.PartNumber! - b.PartNumber!);
    const chosen: Part[] = [];
    let total = 0;
    for (const part of parts) {
      if (part.PartNumber !== chosen.length + 1 || total >= size) break;
      chosen.push(part);
      total += part.Size ?? 0;
    }
    if (total !== size || chosen.length === 0) continue;
    await scope.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: scope.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: chosen.map((part) => ({ PartNumber: part.PartNumber!, ETag: part.ETag! })) },
      }),
    );
    return true;
  }
  return false;
}

/** Aborts the unfinished uploads of `key`, or (without a key) those under `prefix` begun before `before`; returns how many. */
export async function abortMultipart(scope: Scope, filter: { key: string } | { prefix: string; before: Date }): Promise<number> {
  const doomed = [];
  for await (const upload of uploadsUnder(scope, 'key' in filter ? filter.key : filter.prefix)) {
    if ('key' in filter ? upload.key === filter.key : upload.initiated < filter.before) doomed.push(upload);
  }
  for (const upload of doomed) await scope.client.send(new AbortMultipartUploadCommand({ Bucket: scope.bucket, Key: upload.key, UploadId: upload.uploadId }));
  return doomed.length;
}

/** Copies a large object in parts (UploadPartCopy), keeping its content type and encoding. */
export async function copyInParts(
  scope: Scope,
  from: { key: string; size: number; contentType?: string | undefined; contentEncoding?: string | undefined },
  to: string,
  partSize: number,
): Promise<void> {
  const created = await scope.client.send(
    new CreateMultipartUploadCommand({
      Bucket: scope.bucket,
      Key: to,
      ...(from.contentType ? { ContentType: from.contentType } : {}),
      ...(from.contentEncoding ? { ContentEncoding: from.contentEncoding } : {}),
    }),
  );
  const uploadId = created.UploadId!;
  try {
    const parts = [];
    let start = 0;
    for (const [index, size] of partSizes(from.size, effectivePartSize(from.size, partSize)).entries()) {
      const reply = await scope.client.send(
        new UploadPartCopyCommand({
          Bucket: scope.bucket,
          Key: to,
          UploadId: uploadId,
          PartNumber: index + 1,
          CopySource: copySource(scope.bucket, from.key),
          CopySourceRange: `bytes=${start}-${start + size - 1}`,
        }),
      );
      parts.push({ PartNumber: index + 1, ETag: reply.CopyPartResult!.ETag! });
      start += size;
    }
    await scope.client.send(new CompleteMultipartUploadCommand({ Bucket: scope.bucket, Key: to, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    await scope.client.send(new AbortMultipartUploadCommand({ Bucket: scope.bucket, Key: to, UploadId: uploadId })).catch(() => undefined);
    throw error;
  }
}

/** `CopySource` of an object: bucket and key, the key URL-encoded. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
