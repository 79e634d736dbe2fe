/**
 * Our search attributes: what makes the Temporal Web UI useful on its own
 * (filter by project, ref, commit, eval, derivation, system or status).
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributeUpdatePair } from '@temporalio/common';
import { upsertSearchAttributes } from '@temporalio/workflow';

export const searchAttributeKeys = {
  project: defineSearchAttributeKey('HarmoniaProject', SearchAttributeType.KEYWORD),
  ref: defineSearchAttributeKey('HarmoniaRef', SearchAttributeType.KEYWORD),
  commit: defineSearchAttributeKey('HarmoniaCommit', SearchAttributeType.KEYWORD),
  evalId: defineSearchAttributeKey('HarmoniaEvalId', SearchAttributeType.KEYWORD),
  drvName: defineSearchAttributeKey('HarmoniaDrvName', SearchAttributeType.KEYWORD),
  system: defineSearchAttributeKey('HarmoniaSystem', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('HarmoniaStatus', SearchAttributeType.KEYWORD),
} as const;

export type SearchAttributeValues = Partial<Record<keyof typeof searchAttributeKeys, string>>;

/** Typed pairs for start options (`typedSearchAttributes`) and for upserts. */
export function searchAttributePairs(values: SearchAttributeValues): SearchAttributeUpdatePair[] {
  const pairs: SearchAttributeUpdatePair[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined) pairs.push({ key: searchAttributeKeys[name as keyof typeof searchAttributeKeys], value });
  }
  return pairs;
}

/** Upserts from inside a workflow. */
export function setWorkflowSearchAttributes(values: SearchAttributeValues): void {
  upsertSearchAttributes(searchAttributePairs(values));
}
