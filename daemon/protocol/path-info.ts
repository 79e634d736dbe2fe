/** Store-object metadata as the daemon sends it (UnkeyedValidPathInfo). */
import { parseHash, type Hash } from '../core/hash.ts';
import { ProtocolError } from './errors.ts';
import type { WireReader } from './wire.ts';

/** What the store knows about one valid path. */
export interface PathInfo {
  path: string;
  deriver: string | undefined;
  narHash: Hash;
  references: string[];
  /** Seconds since the epoch. */
  registrationTime: number;
  narSize: number;
  /** True when this store built the path itself. */
  ultimate: boolean;
  signatures: string[];
  /** Content address (`fixed:r:sha256:…`, `text:sha256:…`), when the path has one. */
  ca: string | undefined;
}

/** Reads the path info that follows a "found" flag (protocol 1.16+ layout, which every supported daemon uses). */
export async function readPathInfo(reader: WireReader, path: string): Promise<PathInfo> {
  const deriver = await reader.readString();
  const hashText = await reader.readString();
  let narHash: Hash;
  try {
    narHash = parseHash(hashText, 'sha256');
  } catch (error) {
    throw new ProtocolError(`daemon sent NAR hash '${hashText}' for ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const references = await reader.readStrings();
  const registrationTime = await reader.readU64();
  const narSize = await reader.readU64();
  const ultimate = await reader.readBool();
  const signatures = await reader.readStrings();
  const ca = await reader.readString();
  return {
    path,
    deriver: deriver === '' ? undefined : deriver,
    narHash,
    references,
    registrationTime,
    narSize,
    ultimate,
    signatures,
    ca: ca === '' ? undefined : ca,
  };
}
