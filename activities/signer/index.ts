/**
 * The signer's activities, on the `signer` queue: the only code holding the signing key and the
 * storage credentials, and the only writer of narinfos and of NARs under their final names.
 *
 * It signs nothing on a builder's word. Before an output is signed: the derivation is read from
 * the cache (or the local store) and must place that output at that path as Nix computes it; the
 * upload is read back from its staging name (activities/signer/inspect.ts) and its NarHash and
 * NarSize recomputed; every claimed reference must occur in it and lie in the closure of the
 * derivation's inputs; a fixed-output derivation's declared hash must match. Only then is the NAR
 * moved to its final name and the narinfo signed. Anything else is refused with its reason
 * (SIGNER_REJECTED) and the upload discarded. An evaluator's `.drv` files and sources are checked
 * against the paths their contents address instead (content-address.ts).
 *
 * Every step is idempotent, so several signers polling one queue are failover: a signer that dies
 * mid-publish is retried by another, and no narinfo ever points at a missing NAR.
 */
import { stepHeartbeat } from '../heartbeat.ts';
import { ApplicationFailure } from '@temporalio/common';
import { formatHash, parseHash, parsePrefixedHash, toNarHash } from '../../daemon/core/hash.ts';
import { contentAddressOf } from './content-address.ts';
import { RefusedOutput, SignerDerivations, type OutputExpectation } from './derivations.ts';
import { inspectUpload, InspectionError, type Inspection } from './inspect.ts';
import { narInfoFingerprint, parseNarInfo, printNarInfo, type NarInfo } from '../../daemon/core/narinfo.ts';
import { signFingerprint, type SecretKey } from '../../daemon/core/signing.ts';
import { readText } from '../../cache/backend-reader.ts';
import { CACHE_INFO_KEY, cacheInfoText, CONTENT_TYPES, listingKey, logKey, narInfoKey, narKey } from '../../cache/layout.ts';
import type { CacheBackend } from '../../cache/types.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import type { PublishOutcome, SignerActivities, StagedFile, StagedOutput, StagedUpload, UploadPlan } from '../types.ts';

/** Presigned upload targets live 15 minutes unless `limits.presigned-url-lifetime` says otherwise. */
export const DEFAULT_UPLOAD_LIFETIME_MS = 15 * 60_000;

/** Failure type of a publish whose NAR is not in the cache as announced; the build workflow uploads again. */
export const UPLOAD_MISSING = 'UploadMissing';

/** Failure type of a `.drv` or source whose path is not what its contents address: never signed. */
export const CLOSURE_REFUSED = 'ClosureRefused';

/** Failure type of an output the signer will not sign (the reason follows "rejected by the signer:"); nothing was written. */
export const SIGNER_REJECTED = 'SignerRejected';

export interface SignerDeps {
  backend: CacheBackend;
  secretKey: SecretKey;
  uploadLifetimeMs?: number;
  /** Where `.drv` files and the references of inputs are read; by default our cache alone. */
  derivations?: SignerDerivations;
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

function rejected(reason: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`rejected by the signer: ${reason}`, SIGNER_REJECTED);
}

export function createSignerActivities(deps: SignerDeps): SignerActivities {
  const { backend, secretKey } = deps;
  const lifetimeMs = deps.uploadLifetimeMs ?? DEFAULT_UPLOAD_LIFETIME_MS;
  const derivations = deps.derivations ?? new SignerDerivations({ backend });

  const narSpec = (output: StagedOutput) => ({ key: narKey(output.narHash), size: output.file.size, sha256: output.file.sha256 });

  /** What the derivation of a build says its outputs must be; a closure batch has none. */
  async function expectationOf(staged: StagedUpload): Promise<OutputExpectation | undefined> {
    if (staged.kind === 'closure') return undefined;
    let expectation: OutputExpectation;
    try {
      expectation = await derivations.expect(staged.drvPath);
    } catch (error) {
      if (error instanceof RefusedOutput) throw rejected(error.message);
      throw error;
    }
    for (const output of staged.outputs) {
      if (expectation.outputs.get(output.name) !== output.path) {
        throw rejected(`${output.path} is not the output '${output.name}' of ${staged.drvPath}`);
      }
    }
    if (staged.system !== expectation.system) throw rejected(`${staged.drvPath} is for ${expectation.system}, not ${staged.system}`);
    return expectation;
  }

  /** Why the NAR read back does not match what the uploader claims of `output`, or undefined when it does. */
  async function mismatch(staged: StagedUpload, output: StagedOutput, found: Inspection, expectation: OutputExpectation | undefined): Promise<string | undefined> {
    if (found.narSize !== output.narSize || toNarHash(found.narHash) !== output.narHash) {
      return `NarHash mismatch: the NAR uploaded for ${output.path} is ${found.narSize} bytes hashing to ${toNarHash(found.narHash)}, not the ${output.narSize} bytes and ${output.narHash} announced`;
    }
    const absent = output.references.find((reference) => !found.references.includes(reference));
    if (absent) return `${output.path} claims a reference to ${absent}, which does not occur in it`;
    if (!expectation) return undefined;
    const outside = await derivations.outsideClosure(output.references, expectation.inputs, [...expectation.outputs.values()]);
    if (outside) return `${output.path} refers to ${outside}, which is outside the closure of the inputs of ${staged.drvPath}`;
    if (expectation.fixed) {
      const declared = formatHash(parseHash(expectation.fixed.hash, expectation.fixed.algorithm), 'base32');
      const actual = found.fixedHash ? formatHash(found.fixedHash, 'base32') : 'not a single file';
      if (declared !== actual) return `fixed-output hash mismatch: ${output.path} should hash to ${declared}, but hashes to ${actual}`;
    }
    return undefined;
  }

  /**
   * Reads back what is stored for `output` (the staged upload, or a NAR already at its final name),
   * checks it, moves a staged upload into place, then signs and writes the narinfo. Returns the
   * narinfo that won a race, if another signer wrote one first.
   */
  async function verifyAndSign(staged: StagedUpload, output: StagedOutput, expectation: OutputExpectation | undefined): Promise<NarInfo | undefined> {
    const spec = narSpec(output);
    const atFinalName = await backend.head(spec.key);
    if (!atFinalName && !(await backend.stagedUpload(spec))) {
      throw ApplicationFailure.nonRetryable(`${spec.key} (the NAR of ${output.path}) is not in ${backend.description}: it was never uploaded`, UPLOAD_MISSING);
    }
    const body = atFinalName ? (await backend.get(spec.key))?.body : await backend.readStaged(spec);
    if (!body) throw ApplicationFailure.nonRetryable(`the NAR of ${output.path} vanished from ${backend.description} while it was being verified`, UPLOAD_MISSING);
    // Nothing refused stays staged; an object at its final name was verified when it was put there.
    const refuse = async (failure: ApplicationFailure): Promise<never> => {
      if (!atFinalName) await backend.discardUpload(spec);
      throw failure;
    };
    let found: Inspection;
    try {
      found = await inspectUpload(body, { candidates: output.references, maxNarSize: output.narSize, ...(expectation?.fixed ? { fixed: expectation.fixed } : {}) });
    } catch (error) {
      if (!(error instanceof InspectionError)) throw error;
      return refuse(rejected(`the upload for ${output.path} is refused: ${error.message}`));
    }
    const reason = await mismatch(staged, output, found, expectation);
    if (reason) return refuse(rejected(reason));
    let ca: string | undefined;
    if (!expectation) {
      // A `.drv` or a source is signed only once its path is shown to be what its contents address.
      try {
        ca = contentAddressOf(output.path, found, output.references);
      } catch (error) {
        return refuse(ApplicationFailure.nonRetryable((error as Error).message, CLOSURE_REFUSED));
      }
    }
    stepHeartbeat();
    if (!atFinalName) await backend.promoteUpload(spec);
    // Before the narinfo, which makes the path visible: `nix store ls` reads the listing instead of the NAR.
    await backend.put(listingKey(output.path), found.listing, { contentType: CONTENT_TYPES.listing, ifAbsent: true });
    const info: NarInfo = {
      storePath: output.path,
      url: spec.key,
      compression: 'zstd',
      fileHash: parsePrefixedHash(found.fileSha256),
      fileSize: found.fileSize,
      narHash: found.narHash,
      narSize: found.narSize,
      references: output.references,
      ...(ca ? { ca } : { deriver: staged.drvPath, system: staged.system }),
      sigs: [],
    };
    info.sigs = [signFingerprint(secretKey, narInfoFingerprint(info))];
    const written = await backend.put(narInfoKey(output.path), Buffer.from(printNarInfo(info)), { contentType: CONTENT_TYPES.narInfo, ifAbsent: true });
    return written ? undefined : readNarInfo(backend, output.path);
  }

  return {
    async prepareUpload(staged: StagedUpload): Promise<UploadPlan> {
      // Refuse before anything is uploaded when the outputs cannot be this derivation's.
      await expectationOf(staged);
      const plan: UploadPlan = { uploads: [] };
      const planned = new Set<string>();
      for (const output of staged.outputs) {
        stepHeartbeat();
        if (await backend.head(narInfoKey(output.path))) continue;
        const spec = narSpec(output);
        if (planned.has(spec.key) || (await backend.head(spec.key)) || (await backend.stagedUpload(spec))) continue;
        planned.add(spec.key);
        plan.uploads.push({ key: spec.key, target: await backend.uploadTarget(spec, { contentType: CONTENT_TYPES.nar, lifetimeMs }) });
      }
      if (staged.log) {
        // A log already in the cache is an earlier attempt's (a failed build's): this one replaces it.
        const spec = { key: logKey(staged.drvPath), ...staged.log };
        if (!(await backend.stagedUpload(spec))) {
          plan.uploads.push({ key: spec.key, target: await backend.uploadTarget(spec, { contentType: CONTENT_TYPES.log, contentEncoding: 'zstd', lifetimeMs }) });
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
      const expectation = await expectationOf(staged);
      for (const output of staged.outputs) {
        stepHeartbeat();
        const existing = await readNarInfo(backend, output.path);
        if (existing) {
          adoptPublished(output, existing);
          continue;
        }
        const raced = await verifyAndSign(staged, output, expectation);
        if (raced) adoptPublished(output, raced);
        else outcome.outputs.push(stripFile(output));
      }
      if (staged.log) await publishLog(staged.drvPath, staged.log);
      return outcome;
    },
  };

  /**
   * A log is worth keeping but never worth failing a build over; it is not signed. It replaces the
   * log of an earlier attempt: one build workflow per derivation runs its attempts one after
   * another, so the log published last is the newest attempt's.
   */
  async function publishLog(drvPath: string, file: StagedFile): Promise<void> {
    const spec = { key: logKey(drvPath), ...file };
    try {
      if (await backend.stagedUpload(spec)) await backend.promoteUpload(spec);
      // Without a staged upload, a retried publish has already moved this log into place.
      else if (!(await backend.head(spec.key))) deps.warn?.(`the build log of ${drvPath} is missing from ${backend.description}`);
    } catch (error) {
      deps.warn?.(`the build log of ${drvPath} was not stored: ${(error as Error).message}`);
    }
  }
}

function stripFile({ name, path, narHash, narSize, references }: StagedOutput): BuiltOutput {
  return { name, path, narHash, narSize, references };
}
