/**
 * The builder's upload, on its own host queue (the outputs and the log are on this machine).
 * Staging packs each output's NAR through zstd in one pass, into memory or a file
 * (activities/builder/staging.ts), hashing the NAR (checked against what the store registered) and
 * the compressed bytes (announced to the signer, who scopes the upload to that length and
 * checksum). Uploading sends each staged file to the target the
 * signer issued. The builder never holds the signing key or storage credentials.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { toNarHash } from '../../daemon/core/hash.ts';
import { packNar, tapHash } from '../../daemon/nar/index.ts';
import { zstdCompress } from '../../daemon/executor/zstd.ts';
import { logKey, narKey } from '../../cache/layout.ts';
import type { UploadTarget } from '../../cache/types.ts';
import { UPLOAD_EXPIRED } from '../../workflows/definitions.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import type { HostActivities, StagedFile, StagedUpload, UploadPlan } from '../types.ts';
import { stepHeartbeat, withHeartbeats } from '../heartbeat.ts';
import { removeFile } from '../../lib/files.ts';
import { DEFAULT_HTTP_TIMEOUTS, describeRequest, Watchdog, watchedUpload, type HttpTimeouts } from '../../lib/http.ts';
import { Staging } from './staging.ts';

/** Failure type when the staged files are gone (the host restarted): the build must run again. */
export const STAGING_MISSING = 'StagingMissing';

export interface UploadDeps {
  /** Staged files and full build logs live here; cleared by prepareStaging when the worker starts. */
  stagingDir: string;
  /** What is staged in memory, shared with the build activity's logs (activities/builder/index.ts). */
  staging?: Staging;
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
 * The whole log of one build (the executor bounds it at its log limit, 64 MB by default), beside
 * the short tail kept in the database: in memory while it is small, in a file once it grows.
 */
export class FullLog {
  private held: Buffer[] = [];
  private size = 0;
  private stream: WriteStream | undefined;
  private done: Promise<void> | undefined;

  /** Without `staging`, the log goes straight to its file. */
  constructor(
    readonly path: string,
    private readonly staging?: Staging,
  ) {
    if (!staging) this.openFile();
  }

  push(line: string): void {
    const chunk = Buffer.from(`${line}\n`);
    if (this.stream) {
      this.stream.write(chunk);
      return;
    }
    this.held.push(chunk);
    this.size += chunk.length;
    if (this.size > SMALL_LOG_BYTES) this.openFile();
  }

  private openFile(): void {
    const stream = createWriteStream(this.path);
    this.done = new Promise((resolve, reject) => {
      stream.once('close', resolve).once('error', reject);
    });
    for (const chunk of this.held) stream.write(chunk);
    this.held = [];
    this.stream = stream;
  }

  /** Keeps the log for the upload: in memory if it fits there, else flushed to its file. */
  async close(): Promise<void> {
    if (!this.stream && !this.staging?.keep(this.path, Buffer.concat(this.held))) this.openFile();
    this.held = [];
    this.stream?.end();
    await this.done;
  }

  /** Drops the log (a build that failed uploads nothing). */
  async discard(): Promise<void> {
    this.held = [];
    this.stream?.end();
    await this.done?.catch(() => undefined);
    if (this.staging) await this.staging.remove(this.path);
    else await removeFile(this.path);
  }
}

/** A log up to this size stays in memory until it is staged. */
const SMALL_LOG_BYTES = 256 * 1024;

async function* only(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}

async function stageOutput(staging: Staging, dir: string, output: BuiltOutput): Promise<StagedFile> {
  const nar = tapHash(packNar(output.path), 'sha256');
  const file = await staging.write(join(dir, basename(narKey(output.narHash))), zstdCompress(nar.stream));
  const digest = nar.digest();
  const packed = toNarHash(digest.hash);
  if (digest.narSize !== output.narSize || packed !== output.narHash) {
    throw new Error(
      `${output.path} on this builder packs to ${digest.narSize} bytes hashing to ${packed}, but the store ` +
        `registered ${output.narSize} bytes hashing to ${output.narHash}: the store is corrupt here; check it with 'nix-store --verify --check-contents'`,
    );
  }
  return file;
}

function expired(key: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`the upload target for ${key} expired before it was used`, UPLOAD_EXPIRED);
}

/** Copies a staged file to a staging path in a local cache: a temporary name, then rename, so a half copy is never seen. */
async function uploadToFile(source: string | Buffer, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const partial = `${target}.${process.pid}-${Date.now()}.part`;
  try {
    if (typeof source === 'string') await copyFile(source, partial);
    else await writeFile(partial, source);
    await rename(partial, target);
  } finally {
    await removeFile(partial);
  }
}

/**
 * PUTs a staged file to a presigned URL; an object already there (412) is success. The body may
 * pause at most `timeouts.idleMs`, and the answer must come within `timeouts.requestMs` of it.
 */
export async function uploadToUrl(
  key: string,
  source: string | Buffer,
  target: Extract<UploadTarget, { kind: 'put' }>,
  timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS,
): Promise<void> {
  const size = typeof source === 'string' ? (await stat(source)).size : source.length;
  await putBytes(key, { url: target.url, headers: target.headers }, { size, chunks: () => (typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : only(source)) }, timeouts);
}

/**
 * PUTs each part of a staged file that is not in `done` to its presigned URL, adding it to `done`
 * as it lands: an upload retried after a fault sends only the parts still missing.
 */
export async function uploadInParts(
  key: string,
  source: string | Buffer,
  target: Extract<UploadTarget, { kind: 'multipart' }>,
  done: Set<number>,
  timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS,
  onPart?: (done: number[]) => void,
): Promise<void> {
  const total = typeof source === 'string' ? (await stat(source)).size : source.length;
  for (const part of target.parts) {
    if (done.has(part.number)) continue;
    const start = (part.number - 1) * target.partSize;
    const end = Math.min(start + target.partSize, total);
    if (end <= start) throw new Error(`part ${part.number} of ${key} starts past the end of its ${total} staged bytes: the upload was planned for another file`);
    const chunks = (): AsyncIterable<Uint8Array> =>
      typeof source === 'string' ? createReadStream(source, { start, end: end - 1, highWaterMark: 1 << 20 }) : only(source.subarray(start, end));
    await putBytes(`${key} (part ${part.number} of ${Math.ceil(total / target.partSize)})`, part, { size: end - start, chunks }, timeouts);
    done.add(part.number);
    onPart?.([...done]);
  }
}

async function putBytes(
  what: string,
  target: { url: string; headers: Record<string, string> },
  body: { size: number; chunks: () => AsyncIterable<Uint8Array> },
  timeouts: HttpTimeouts,
): Promise<void> {
  const watchdog = new Watchdog(describeRequest('PUT', target.url));
  watchdog.arm(timeouts.requestMs, 'no progress');
  let response: Response;
  let text: string;
  try {
    response = await fetch(target.url, {
      method: 'PUT',
      headers: { ...target.headers, 'content-length': String(body.size) },
      body: Readable.toWeb(Readable.from(watchedUpload(body.chunks(), watchdog, timeouts))) as ReadableStream,
      duplex: 'half',
      signal: watchdog.signal,
    } as RequestInit);
    watchdog.arm(timeouts.requestMs, 'no complete answer');
    text = await response.text();
  } catch (error) {
    throw watchdog.explain(error);
  } finally {
    watchdog.disarm();
  }
  if (response.ok || response.status === 412) return;
  if (response.status === 403 && /expired/i.test(text)) throw expired(what);
  throw new Error(`PUT of ${what} (${body.size} bytes) was refused with ${response.status} ${response.statusText}: ${text.slice(0, 300)}`);
}

/** What an upload's heartbeats carry: the parts of each multipart upload that have landed. */
interface PartProgress {
  uploading: string;
  parts: Record<string, number[]>;
}

/** The parts the previous attempt of the current activity reported as uploaded, if any. */
function partsReported(): Record<string, number[]> {
  try {
    const details = Context.current().info.heartbeatDetails as Partial<PartProgress> | undefined;
    return details?.parts && typeof details.parts === 'object' ? details.parts : {};
  } catch {
    return {};
  }
}

/** A builder's uploads: staging right after a build (in the build activity), and the host-queue upload. */
export interface HostUploads extends HostActivities {
  /** Packs each output's NAR through zstd into a staged file in one pass, hashing both; compresses the log. */
  stageOutputs(request: { drvPath: string; system: string; outputs: BuiltOutput[] }): Promise<StagedUpload>;
}

export function createUploadActivities(deps: UploadDeps): HostUploads {
  const staging = deps.staging ?? new Staging();
  const stagingOf = (drvPath: string): string => join(deps.stagingDir, basename(drvPath));

  return {
    async stageOutputs({ drvPath, system, outputs }): Promise<StagedUpload> {
      const dir = stagingOf(drvPath);
      // Whatever an earlier attempt left here belongs to no upload now.
      await staging.removeDir(dir);
      const staged: StagedUpload = { drvPath, system, outputs: [] };
      for (const output of outputs) {
        stepHeartbeat({ staging: output.path });
        staged.outputs.push({ ...output, file: await stageOutput(staging, dir, output) });
      }
      const log = buildLogPath(deps.stagingDir, drvPath);
      const held = staging.get(log);
      if (held) staged.log = await staging.write(join(dir, 'log.zst'), zstdCompress(only(held)));
      else if (await stat(log).catch(() => undefined)) staged.log = await staging.write(join(dir, 'log.zst'), zstdCompress(createReadStream(log)));
      return staged;
    },

    uploadOutputs({ drvPath, plan }: { drvPath: string; plan: UploadPlan }): Promise<void> {
      // Parts a failed attempt of this activity uploaded, as its heartbeats reported them.
      const progress: PartProgress = { uploading: drvPath, parts: { ...partsReported() } };
      return withHeartbeats(() => upload(drvPath, plan, progress), progress);
    },
  };

  /** Sends each staged file to its target, then clears the staging of this build. */
  async function upload(drvPath: string, plan: UploadPlan, progress: PartProgress): Promise<void> {
    const dir = stagingOf(drvPath);
    for (const { key, target } of plan.uploads) {
      const path = key === logKey(drvPath) ? join(dir, 'log.zst') : join(dir, basename(key));
      if (!(await staging.has(path))) {
        throw ApplicationFailure.nonRetryable(`the staged file for ${key} is gone from ${dir} (did the builder restart?)`, STAGING_MISSING);
      }
      if (Date.now() >= target.expiresAt) throw expired(key);
      stepHeartbeat({ uploading: key });
      const source = staging.get(path) ?? path;
      if (target.kind === 'file') await uploadToFile(source, target.path);
      else if (target.kind === 'put') await uploadToUrl(key, source, target);
      else {
        const done = new Set(progress.parts[key] ?? []);
        await uploadInParts(key, source, target, done, undefined, (numbers) => {
          progress.parts[key] = numbers;
        });
      }
    }
    await staging.removeDir(dir);
    await staging.remove(buildLogPath(deps.stagingDir, drvPath));
  }
}
