/**
 * The one worker-protocol request a store-backed cache needs beyond those of DaemonClient: finding
 * a store path by its hash part, which is all a `<hash>.narinfo` request names.
 */
import type { DaemonClient } from '../daemon/protocol/client.ts';
import { WireWriter } from '../daemon/protocol/wire.ts';

/** wopQueryPathFromHashPart (libstore/worker-protocol.hh). */
const QUERY_PATH_FROM_HASH_PART = 29;

/** The valid store path whose hash part is `hashPart`, or undefined. */
export function queryPathFromHashPart(client: DaemonClient, hashPart: string): Promise<string | undefined> {
  return client.connection.exclusive(async (io) => {
    await io.send(new WireWriter().u64(QUERY_PATH_FROM_HASH_PART).string(hashPart).toBuffer());
    await io.stderr();
    const path = await io.reader.readString();
    return path === '' ? undefined : path;
  });
}
