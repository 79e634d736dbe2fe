/**
 * The job stream's lines: parsing what nix-eval-jobs prints, and completing a job from its
 * `.drv` so both evaluators report the same fields (nix-eval-jobs prints `inputDrvs` only with
 * `--show-input-drvs`, and `requiredSystemFeatures` never).
 */
import { z } from 'zod';
import type { Derivation } from '../core/derivation.ts';
import { isStorePath } from '../core/store-path.ts';
import { formatAttrPath } from './attr-path.ts';
import { JobLineError } from './errors.ts';
import { normalizeMeta } from './job-meta.ts';
import type { AggregateSpec, EvalJob, EvalJobError, EvalJobLine, JobMeta } from './types.ts';

const storePath = z.string().refine((path) => isStorePath(path), 'not a store path');

// Fields as written by nix-eval-jobs' src/drv.cc (to_json) and src/worker.cc (reply);
// fields this program does not use (cacheStatus, isCached, …) are dropped. `meta` comes with
// `--meta`, `constituents` (drv paths) and `namedConstituents` with `--constituents`.
const errorLineSchema = z.object({
  attr: z.string(),
  attrPath: z.array(z.string()),
  error: z.string(),
});
const jobLineSchema = z.object({
  attr: z.string(),
  attrPath: z.array(z.string()),
  drvPath: storePath.refine((path) => path.endsWith('.drv'), 'not a .drv path'),
  name: z.string(),
  system: z.string(),
  // null for content-addressed outputs, whose paths are unknown before building.
  outputs: z.record(z.string(), storePath.nullable()),
  inputDrvs: z.record(storePath, z.array(z.string())).optional(),
  meta: z.unknown().optional(),
  constituents: z.array(storePath).optional(),
  namedConstituents: z.array(z.string()).optional(),
});

/** A nix-eval-jobs job line before completion from its `.drv`. */
export type NixEvalJobsJob = z.infer<typeof jobLineSchema>;

/** Parses one line of nix-eval-jobs' stdout into an error line or a job line. */
export function parseNixEvalJobsLine(line: string): EvalJobError | NixEvalJobsJob {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new JobLineError('invalid JSON', line);
  }
  if (typeof value === 'object' && value !== null && 'error' in value) {
    const parsed = errorLineSchema.safeParse(value);
    if (!parsed.success) throw new JobLineError(`malformed error line (${z.prettifyError(parsed.error)})`, line);
    return parsed.data;
  }
  const parsed = jobLineSchema.safeParse(value);
  if (!parsed.success) throw new JobLineError(`malformed job line (${z.prettifyError(parsed.error)})`, line);
  return parsed.data;
}

/** What an evaluator learnt of a job beyond its `.drv`: its `meta` and, for an aggregate, its constituents. */
export interface JobExtras {
  meta?: JobMeta;
  aggregate?: AggregateSpec;
}

/** The extras of a nix-eval-jobs job line. */
export function nixEvalJobsExtras(line: NixEvalJobsJob): JobExtras {
  const extras: JobExtras = {};
  const meta = normalizeMeta(line.meta);
  if (meta) extras.meta = meta;
  if (line.constituents !== undefined || line.namedConstituents !== undefined) {
    extras.aggregate = { drvs: line.constituents ?? [], names: line.namedConstituents ?? [] };
  }
  return extras;
}

/** Why a content-addressed derivation is not a job here, in a form an error line can carry. */
export const CONTENT_ADDRESSED_UNSUPPORTED =
  "content-addressed derivations (`__contentAddressed = true`) need Nix's experimental feature 'ca-derivations', " +
  'which harmonia-ci does not support: it plans, builds, signs and serves outputs by their store paths, which such a ' +
  'derivation only has once built, and it publishes no realisations; remove `__contentAddressed` from this job ' +
  '(fixed-output and input-addressed derivations are supported)';

// Nix's own words when the feature is off (src/libutil/experimental-features.cc, MissingExperimentalFeature).
const CA_FEATURE_DISABLED = /experimental Nix feature 'ca-derivations' is disabled/;

/** An error line about a content-addressed derivation says why harmonia-ci refuses it, not how to turn the feature on. */
export function explainErrorLine(line: EvalJobError): EvalJobError {
  return CA_FEATURE_DISABLED.test(line.error) ? { ...line, error: `${CONTENT_ADDRESSED_UNSUPPORTED} (Nix said: ${line.error.trim().split('\n')[0]})` } : line;
}

/** The derivation's `requiredSystemFeatures`, from its environment or its structured attributes. */
export function requiredSystemFeatures(drv: Derivation): string[] {
  const structured = drv.env.get('__json');
  if (structured !== undefined) {
    const attrs: unknown = JSON.parse(structured);
    const features = (attrs as { requiredSystemFeatures?: unknown }).requiredSystemFeatures;
    return Array.isArray(features) ? features.filter((f): f is string => typeof f === 'string') : [];
  }
  return (drv.env.get('requiredSystemFeatures') ?? '').split(/\s+/).filter((f) => f !== '');
}

/**
 * The job line for an attribute whose derivation has been read: outputs, system, features and
 * inputs come from the `.drv` itself. Derivations with content-addressed outputs become error
 * lines, since nothing downstream can plan a build without static output paths.
 */
export function jobFromDerivation(attrPath: string[], drvPath: string, name: string, drv: Derivation, extras: JobExtras = {}): EvalJobLine {
  const attr = formatAttrPath(attrPath);
  const outputs: Record<string, string> = {};
  for (const [outputName, output] of drv.outputs) {
    if (output.path === '') {
      return {
        attr,
        attrPath,
        error: `derivation '${drvPath}' has content-addressed output '${outputName}' without a static path: ${CONTENT_ADDRESSED_UNSUPPORTED}`,
      };
    }
    outputs[outputName] = output.path;
  }
  const job: EvalJob = {
    attr,
    attrPath,
    drvPath,
    name,
    system: drv.platform,
    outputs,
    requiredSystemFeatures: requiredSystemFeatures(drv),
    inputDrvs: Object.fromEntries(drv.inputDrvs),
  };
  if (extras.meta) job.meta = extras.meta;
  if (extras.aggregate) job.aggregate = extras.aggregate;
  return job;
}
