/** NAR export (nar-from-path) and import (add-to-store-nar), both streamed. */
import { createHash } from 'node:crypto';
import { formatHash, hashEquals, type Hash } from '../core/hash.ts';
import type { ConnectionIO } from './connection.ts';
import { Op } from './constants.ts';
import { ProtocolError } from './errors.ts';
import type { PathInfo } from './path-info.ts';
import type { StderrHandlers } from './stderr.ts';
import { WireWriter } from './wire.ts';

/** Largest chunk handed to a NAR sink at once. */
const NAR_CHUNK_BYTES = 1 << 20;

/** How long a NAR export may stall before the connection is given up. */
export const NAR_STALL_TIMEOUT_MS = 120_000;

/** A NAR to import and the metadata to register it with. */
export interface NarImport {
  info: Pick<PathInfo, 'path' | 'deriver' | 'narHash' | 'references' | 'narSize' | 'signatures' | 'ca'> & Partial<Pick<PathInfo, 'registrationTime' | 'ultimate'>>;
  /** The NAR bytes, in order; the stream may throw to abort the import before it is committed. */
  source: AsyncIterable<Uint8Array>;
  repair?: boolean;
  /** Skip the daemon's signature check (only honoured for trusted clients, after we verified signatures ourselves). */
  dontCheckSigs?: boolean;
}

/**
 * Streams the NAR of `info.path` to `sink`. The daemon sends the raw NAR after STDERR_LAST with no
 * length; we read exactly `info.narSize` bytes and check them against `info.narHash`, so a store
 * object whose contents no longer match its registration is reported, never passed on silently.
 */
export async function narFromPath(
  io: ConnectionIO,
  info: Pick<PathInfo, 'path' | 'narSize' | 'narHash'>,
  sink: (chunk: Uint8Array) => Promise<void> | void,
  stallTimeoutMs = NAR_STALL_TIMEOUT_MS,
): Promise<void> {
  await io.send(new WireWriter().u64(Op.NarFromPath).string(info.path).toBuffer());
  await io.stderr();
  const hasher = createHash(info.narHash.algorithm);
  let received = 0;
  while (received < info.narSize) {
    const chunk = await withStallTimeout(io.reader.readSome(Math.min(NAR_CHUNK_BYTES, info.narSize - received)), stallTimeoutMs, () =>
      new ProtocolError(
        `the nix-daemon stopped sending the NAR of ${info.path} after ${received} of ${info.narSize} bytes: ` +
          `the store object may be corrupt (check it with 'nix-store --verify-path ${info.path}')`,
      ),
    );
    received += chunk.length;
    hasher.update(chunk);
    await sink(chunk);
  }
  const actual: Hash = { algorithm: info.narHash.algorithm, digest: new Uint8Array(hasher.digest()) };
  if (!hashEquals(actual, info.narHash)) {
    throw new ProtocolError(
      `the NAR of ${info.path} hashes to ${formatHash(actual, 'base32')} but the store registered ${formatHash(info.narHash, 'base32')}: ` +
        `the store object is corrupt (repair it with 'nix-store --repair-path ${info.path}')`,
    );
  }
}

function withStallTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Imports a NAR with add-to-store-nar. The payload goes as frames (u64 length + bytes, then an
 * empty frame) while the daemon's stderr stream is read concurrently, so neither side can block
 * the other. If `source` throws, the end frame is never sent and the connection is dropped, so the
 * daemon abandons the import.
 */
export async function addToStoreNar(io: ConnectionIO, request: NarImport, handlers?: StderrHandlers): Promise<void> {
  const { info } = request;
  const header = new WireWriter()
    .u64(Op.AddToStoreNar)
    .string(info.path)
    .string(info.deriver ?? '')
    .string(formatHash(info.narHash, 'base16', false))
    .strings(info.references)
    .u64(info.registrationTime ?? 0)
    .u64(info.narSize)
    .bool(info.ultimate ?? false)
    .strings(info.signatures)
    .string(info.ca ?? '')
    .bool(request.repair ?? false)
    .bool(request.dontCheckSigs ?? false);
  await io.send(header.toBuffer());

  // Read the stderr stream while sending; remember an early end so sending can stop.
  let stderrSettled = false;
  const stderr = io.stderr(handlers).finally(() => {
    stderrSettled = true;
  });
  stderr.catch(() => undefined);

  for await (const chunk of request.source) {
    if (stderrSettled) break;
    if (chunk.length === 0) continue;
    await io.send(Buffer.concat([new WireWriter().u64(chunk.length).toBuffer(), Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)]));
  }
  if (stderrSettled) {
    // The daemon answered mid-stream, so frames and replies are out of step: the connection must go.
    const early = await stderr.then(
      () => undefined,
      (error: unknown) => error,
    );
    const reason = early instanceof Error ? `: ${early.message}` : '';
    throw new ProtocolError(`the nix-daemon ended the import of ${info.path} before it received the whole NAR${reason}`, { cause: early });
  }
  await io.send(new WireWriter().u64(0).toBuffer());
  await stderr;
}
