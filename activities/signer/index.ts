/**
 * The signer's activities, on the `signer` queue: the only code holding the signing key and the
 * storage credentials. Every step is idempotent, so several signers polling one queue are
 * failover: a signer that dies mid-publish is retried by another, and because a narinfo is written
 * only after its NAR has been verified in the cache, no narinfo ever points at a missing NAR.
 */
import { stepHeartbeat } from '../heartbeat.ts';
import { ApplicationFailure } from '@temporalio/common';
import { parsePrefixedHash, toNarHash } from '../../daemon/core/hash.ts';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { contentAddressOf, readNarAddress, type NarAddress } from './content-address.ts';
import { narInfoFingerprint, parseNarInfo, printNarInfo, type NarInfo } from '../../daemon/core/narinfo.ts';
import { signFingerprint, type SecretKey } from '../../daemon/core/signing.ts';
import { readText } from '../../cache/backend-reader.ts';
import { UploadMismatchError } from '../../cache/errors.ts';
import { CACHE_INFO_KEY, cacheInfoText, CONTENT_TYPES, logKey, narInfoKey, narKey } from '../../cache/layout.ts';
import type { CacheBackend, StoredObject } from '../../cache/types.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import type { PublishOutcome, SignerActivities, StagedOutput, StagedUpload, UploadPlan } from '../types.ts';

/** Presigned upload targets live 15 minutes unless `limits.presigned-url-lifetime` says otherwise. */
export const DEFAULT_UPLOAD_LIFETIME_MS = 15 * 60_000;

/** Failure type of a publish whose NAR is not in the cache as announced; the build workflow uploads again. */
export const UPLOAD_MISSING = 'UploadMissing';

/** Failure type of a `.drv` or source whose path is not what its contents address: never signed. */
export const CLOSURE_REFUSED = 'ClosureRefused';

export interface SignerDeps {
  backend: CacheBackend;
  secretKey: SecretKey;
  uploadLifetimeMs?: number;
  /** Told about non-fatal problems (a log that could not be committed). */
  warn?(message: string): void;
}

/** Writes `nix-cache-info` unless the cache has one: the first signer sets the cache up. */
export async function initialiseCache(backend: CacheBackend): Promise<void> {
  await backend.put(CACHE_INFO_KEY, Buffer.from(cacheInfoText()), { contentType: CONTENT_TYPES.cacheInfo, ifAbsent: true });
}

/** The narinfo the cache holds for a store path, if any. */
async function readNarInfo(backend: CacheBackend, storePath: string): Promise<NarInfo | undefined> {
  const text = await readText(backend, narInfoKey(storePath));
  return text === undefined ? undefined : parseNarInfo(text);
}

/** The output as an existing narinfo describes it; its hash is canonical. */
function asPublished(output: BuiltOutput, info: NarInfo): BuiltOutput {
  return { ...output, narHash: toNarHash(info.narHash), narSize: info.narSize, references: info.references };
}

export function createSignerActivities(deps: SignerDeps): SignerActivities {
  const { backend, secretKey } = deps;
  const lifetimeMs = deps.uploadLifetimeMs ?? DEFAULT_UPLOAD_LIFETIME_MS;

  const narSpec = (output: StagedOutput) => ({ key: narKey(output.narHash), size: output.file.size, sha256: output.file.sha256 });

  /** Signs and writes the narinfo of an output whose NAR is stored as `stored`; the first narinfo wins. */
  async function writeNarInfo(staged: StagedUpload, output: StagedOutput, stored: StoredObject): Promise<NarInfo | undefined> {
    // A `.drv` or a source is signed only once its path is shown to be what its contents address.
    const closure = staged.kind === 'closure';
    const ca = closure ? await verifiedContentAddress(output, stored) : undefined;
    const info: NarInfo = {
      storePath: output.path,
      url: stored.key,
      compression: 'zstd',
      fileHash: parsePrefixedHash(stored.sha256!),
      fileSize: stored.size,
      narHash: parsePrefixedHash(output.narHash),
      narSize: output.narSize,
      references: output.references,
      ...(closure ? { ca } : { deriver: staged.drvPath, system: staged.system }),
      sigs: [],
    };
    info.sigs = [signFingerprint(secretKey, narInfoFingerprint(info))];
    const written = await backend.put(narInfoKey(output.path), Buffer.from(printNarInfo(info)), { contentType: CONTENT_TYPES.narInfo, ifAbsent: true });
    return written ? undefined : readNarInfo(backend, output.path);
  }

  /** Reads back the stored NAR, checks its hash and size, and checks what it addresses (content-address.ts). */
  async function verifiedContentAddress(output: StagedOutput, stored: StoredObject): Promise<string> {
    const object = await backend.get(stored.key);
    if (!object) throw ApplicationFailure.nonRetryable(`${stored.key} (the NAR of ${output.path}) vanished from ${backend.description}`, UPLOAD_MISSING);
    let address: NarAddress;
    try {
      address = await readNarAddress(zstdDecompress(object.body));
    } catch (error) {
      throw ApplicationFailure.nonRetryable(`the NAR uploaded for ${output.path} is not a valid NAR: ${(error as Error).message}`, CLOSURE_REFUSED);
    }
    if (address.narSize !== output.narSize || toNarHash(address.narHash) !== output.narHash) {
      throw ApplicationFailure.nonRetryable(
        `the NAR uploaded for ${output.path} is ${address.narSize} bytes hashing to ${toNarHash(address.narHash)}, not the ${output.narSize} bytes and ${output.narHash} announced`,
        CLOSURE_REFUSED,
      );
    }
    try {
      return contentAddressOf(output.path, address, output.references);
    } catch (error) {
      throw ApplicationFailure.nonRetryable((error as Error).message, CLOSURE_REFUSED);
    }
  }

  return {
    async prepareUpload(staged: StagedUpload): Promise<UploadPlan> {
      const plan: UploadPlan = { uploads: [] };
      const planned = new Set<string>();
      for (const output of staged.outputs) {
        stepHeartbeat();
        if (await backend.head(narInfoKey(output.path))) continue;
        const spec = narSpec(output);
        if (planned.has(spec.key) || (await backend.head(spec.key))) continue;
        planned.add(spec.key);
        plan.uploads.push({ key: spec.key, target: await backend.uploadTarget(spec, { contentType: CONTENT_TYPES.nar, lifetimeMs }) });
      }
      if (staged.log) {
        const key = logKey(staged.drvPath);
        if (!(await backend.head(key))) {
          const target = await backend.uploadTarget({ key, ...staged.log }, { contentType: CONTENT_TYPES.log, contentEncoding: 'zstd', lifetimeMs });
          plan.uploads.push({ key, target });
        }
      }
      return plan;
    },

    async publish(staged: StagedUpload): Promise<PublishOutcome> {
      const outcome: PublishOutcome = { outputs: [], differing: [] };
      const adoptPublished = (output: StagedOutput, existing: NarInfo): void => {
        if (toNarHash(existing.narHash) !== output.narHash) outcome.differing.push(output.path);
        outcome.outputs.push(asPublished(stripFile(output), existing));
      };
      for (const output of staged.outputs) {
        stepHeartbeat();
        const existing = await readNarInfo(backend, output.path);
        if (existing) {
          adoptPublished(output, existing);
          continue;
        }
        const spec = narSpec(output);
        let stored: StoredObject | undefined;
        try {
          stored = await backend.commitUpload(spec);
        } catch (error) {
          if (!(error instanceof UploadMismatchError)) throw error;
          throw ApplicationFailure.nonRetryable(error.message, UPLOAD_MISSING);
        }
        if (!stored) {
          throw ApplicationFailure.nonRetryable(`${spec.key} (the NAR of ${output.path}) is not in ${backend.description}: it was never uploaded`, UPLOAD_MISSING);
        }
        stepHeartbeat();
        const raced = await writeNarInfo(staged, output, stored);
        if (raced) adoptPublished(output, raced);
        else outcome.outputs.push(stripFile(output));
      }
      if (staged.log) {
        // A log is worth keeping but never worth failing a build over.
        const committed = await backend.commitUpload({ key: logKey(staged.drvPath), ...staged.log }).catch((error: Error) => {
          deps.warn?.(`the build log of ${staged.drvPath} was not stored: ${error.message}`);
          return undefined;
        });
        if (!committed) deps.warn?.(`the build log of ${staged.drvPath} is missing from ${backend.description}`);
      }
      return outcome;
    },
  };
}

function stripFile({ name, path, narHash, narSize, references }: StagedOutput): BuiltOutput {
  return { name, path, narHash, narSize, references };
}
