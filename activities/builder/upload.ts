/**
 * The builder's upload, on its own host queue (the outputs and the log are on this machine).
 * Staging packs each output's NAR through zstd into a file in one pass, hashing the NAR (checked
 * against what the store registered) and the compressed bytes (announced to the signer, who scopes
 * the upload to that length and checksum). Uploading sends each staged file to the target the
 * signer issued. The builder never holds the signing key or storage credentials.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { formatHash, hashEquals, parsePrefixedHash } from '../../daemon/core/hash.ts';
import { packNar, tapHash } from '../../daemon/nar/index.ts';
import { zstdCompress } from '../../daemon/executor/zstd.ts';
import { logKey, narKey } from '../../cache/layout.ts';
import type { UploadTarget } from '../../cache/types.ts';
import { UPLOAD_EXPIRED } from '../../workflows/definitions.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import type { HostActivities, StagedFile, StagedUpload, UploadPlan } from '../types.ts';

/** Failure type when the staged files are gone (the host restarted): the build must run again. */
export const STAGING_MISSING = 'StagingMissing';

export interface UploadDeps {
  /** Staged files and full build logs live here; cleared by prepareStaging when the worker starts. */
  stagingDir: string;
}

/** Where the full log of a build is kept until it is uploaded. */
export function buildLogPath(stagingDir: string, drvPath: string): string {
  return join(stagingDir, `${basename(drvPath)}.log`);
}

/** Empties the staging directory: whatever a previous process left there belongs to no upload now. */
export async function prepareStaging(stagingDir: string): Promise<void> {
  await rm(stagingDir, { recursive: true, force: true });
  await mkdir(stagingDir, { recursive: true });
}

/**
 * The whole log of one build in a file (the executor bounds it at its log limit, 64 MB by
 * default), beside the short tail kept in the database.
 */
export class FullLog {
  private readonly stream: WriteStream;
  private readonly done: Promise<void>;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path);
    this.done = new Promise((resolve, reject) => {
      this.stream.once('close', resolve).once('error', reject);
    });
  }

  push(line: string): void {
    this.stream.write(`${line}\n`);
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    this.stream.end();
    await this.done;
  }

  /** Closes and removes the file (a build that failed uploads nothing). */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}

function heartbeat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (tests): nobody to tell.
  }
}

/** Passes chunks through while hashing them (SHA-256) and counting bytes. */
function measure(source: AsyncIterable<Uint8Array>): { stream: AsyncGenerator<Uint8Array>; result(): StagedFile } {
  const hasher = createHash('sha256');
  let size = 0;
  async function* stream(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hasher.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  return { stream: stream(), result: () => ({ size, sha256: formatHash({ algorithm: 'sha256', digest: new Uint8Array(hasher.digest()) }, 'base32') }) };
}

/** Compresses `source` into `file`; returns the compressed file's size and hash. */
async function compressInto(source: AsyncIterable<Uint8Array>, file: string): Promise<StagedFile> {
  const measured = measure(zstdCompress(source));
  await pipeline(Readable.from(measured.stream), createWriteStream(file));
  return measured.result();
}

async function stageOutput(dir: string, output: BuiltOutput): Promise<StagedFile> {
  const expected = parsePrefixedHash(output.narHash);
  const nar = tapHash(packNar(output.path), expected.algorithm);
  const file = await compressInto(nar.stream, join(dir, basename(narKey(expected))));
  const digest = nar.digest();
  if (digest.narSize !== output.narSize || !hashEquals(digest.hash, expected)) {
    throw new Error(
      `${output.path} on this builder packs to ${digest.narSize} bytes hashing to ${formatHash(digest.hash, 'base32')}, but the store ` +
        `registered ${output.narSize} bytes hashing to ${output.narHash}: the store is corrupt here; check it with 'nix-store --verify --check-contents'`,
    );
  }
  return file;
}

function expired(key: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`the upload target for ${key} expired before it was used`, UPLOAD_EXPIRED);
}

/** Copies a staged file to a staging path in a local cache: a temporary name, then rename, so a half copy is never seen. */
async function uploadToFile(source: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const partial = `${target}.${process.pid}-${Date.now()}.part`;
  try {
    await copyFile(source, partial);
    await rename(partial, target);
  } finally {
    await rm(partial, { force: true });
  }
}

/** PUTs a staged file to a presigned URL; an object already there (412) is success. */
async function uploadToUrl(key: string, source: string, target: Extract<UploadTarget, { kind: 'put' }>): Promise<void> {
  const { size } = await stat(source);
  const response = await fetch(target.url, {
    method: 'PUT',
    headers: { ...target.headers, 'content-length': String(size) },
    body: Readable.toWeb(createReadStream(source, { highWaterMark: 1 << 20 })) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const text = await response.text();
  if (response.ok || response.status === 412) return;
  if (response.status === 403 && /expired/i.test(text)) throw expired(key);
  throw new Error(`PUT of ${key} (${size} bytes) was refused with ${response.status} ${response.statusText}: ${text.slice(0, 300)}`);
}

export function createUploadActivities(deps: UploadDeps): HostActivities {
  const stagingOf = (drvPath: string): string => join(deps.stagingDir, basename(drvPath));

  return {
    async stageOutputs({ drvPath, system, outputs }): Promise<StagedUpload> {
      const dir = stagingOf(drvPath);
      await prepareStaging(dir);
      const staged: StagedUpload = { drvPath, system, outputs: [] };
      for (const output of outputs) {
        heartbeat({ staging: output.path });
        staged.outputs.push({ ...output, file: await stageOutput(dir, output) });
      }
      const log = buildLogPath(deps.stagingDir, drvPath);
      if (await stat(log).catch(() => undefined)) staged.log = await compressInto(createReadStream(log), join(dir, 'log.zst'));
      return staged;
    },

    async uploadOutputs({ drvPath, plan }: { drvPath: string; plan: UploadPlan }): Promise<void> {
      const dir = stagingOf(drvPath);
      for (const { key, target } of plan.uploads) {
        const source = key === logKey(drvPath) ? join(dir, 'log.zst') : join(dir, basename(key));
        if (!(await stat(source).catch(() => undefined))) {
          throw ApplicationFailure.nonRetryable(`the staged file for ${key} is gone from ${dir} (did the builder restart?)`, STAGING_MISSING);
        }
        if (Date.now() >= target.expiresAt) throw expired(key);
        heartbeat({ uploading: key });
        if (target.kind === 'file') await uploadToFile(source, target.path);
        else await uploadToUrl(key, source, target);
      }
      await rm(dir, { recursive: true, force: true });
      await rm(buildLogPath(deps.stagingDir, drvPath), { force: true });
    },
  };
}
