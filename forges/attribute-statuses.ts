/**
 * Commit statuses per attribute (`statuses = "failures"` or `"all"`), as buildbot-nix users know
 * them: one context `harmonia-ci/nix-build/<attr>` per attribute, linking to the build's page,
 * sent once the attribute has its result (never `pending`: a thousand attributes would double the
 * requests for nothing). `failures` sends failed attributes, and a later result for any attribute
 * that had one (a rebuild that succeeded turns its red status green). At most
 * MAX_ATTRIBUTE_STATUSES attributes of an eval get one, failures first; the summary says so.
 */
import type { StatusMode } from '../config/repo-schema.ts';
import { BUILD_CONTEXT, type StatusState } from './types.ts';

/** No commit gets statuses for more attributes than this (GitHub keeps 1,000 statuses per commit and context). */
export const MAX_ATTRIBUTE_STATUSES = 1000;
/** Contexts longer than this are cut: Gitea and GitHub index them. */
const MAX_CONTEXT = 255;
const MAX_DESCRIPTION = 140;

/** One attribute of an eval with its build's state, as PostgreSQL has them. */
export interface AttributeFacts {
  attr: string;
  drvPath: string | null;
  /** The attribute's evaluation error. */
  evalError: string | null;
  /** The build's status when this eval planned a build; null when the outputs were cached. */
  buildStatus: string | null;
  buildError: string | null;
  /** Name of the derivation at the root of a dep-failed build. */
  rootCause: string | null;
  /** For an aggregate: its failed constituents in words (`broken (failed)`), and whether one is still to be built. */
  aggregate?: { failed: string[]; pending: boolean };
}

export interface AttributeStatus {
  context: string;
  state: StatusState;
  description: string;
  /** The build's drv path, whose page the status links to; null: the eval page. */
  drvPath: string | null;
}

/** The context of an attribute's status. */
export function attributeContext(attr: string): string {
  return `${BUILD_CONTEXT}/${attr}`.slice(0, MAX_CONTEXT);
}

/** The state of one attribute, or undefined while it has none yet (pending, building). */
export function describeAttribute(facts: AttributeFacts): Omit<AttributeStatus, 'context'> | undefined {
  const { drvPath } = facts;
  const say = (state: StatusState, description: string): Omit<AttributeStatus, 'context'> => ({ state, description: truncate(description), drvPath });
  if (facts.evalError !== null) return say('failure', `Evaluation failed: ${firstLine(facts.evalError) || 'see the eval page'}`);
  // An aggregate whose own build succeeded follows its constituents, as on the eval page.
  if (facts.aggregate && (facts.buildStatus === null || facts.buildStatus === 'succeeded')) {
    if (facts.aggregate.failed.length > 0) return say('failure', `Constituents failed: ${facts.aggregate.failed.join(', ')}`);
    if (facts.aggregate.pending) return undefined;
  }
  switch (facts.buildStatus) {
    case null:
      return say('success', 'Cached: built before');
    case 'succeeded':
      return say('success', 'Built');
    case 'failed':
      return say('failure', `Failed: ${firstLine(facts.buildError) || 'the build failed'}`);
    case 'failed-with-output':
      return say('failure', `Failed with output: ${firstLine(facts.buildError) || 'the build marked itself failed'}`);
    case 'timed-out':
      return say('failure', `Timed out: ${firstLine(facts.buildError) || 'a limit was reached'}`);
    case 'dep-failed':
      return say('failure', `Not built: ${facts.rootCause ?? 'an input'} failed`);
    case 'cancelled':
      return say('error', 'Cancelled');
    default:
      return undefined;
  }
}

/**
 * The per-attribute statuses an eval sends in `mode`, and how many attributes would have had one
 * without the cap. `alreadySent` holds the contexts that got a status before (for `failures`).
 */
export function planAttributeStatuses(
  mode: StatusMode,
  attributes: readonly AttributeFacts[],
  alreadySent: ReadonlySet<string>,
  limit = MAX_ATTRIBUTE_STATUSES,
): { statuses: AttributeStatus[]; wanted: number } {
  if (mode === 'summary') return { statuses: [], wanted: 0 };
  const wanted: AttributeStatus[] = [];
  for (const facts of attributes) {
    const context = attributeContext(facts.attr);
    const status = describeAttribute(facts);
    if (!status) continue;
    if (mode === 'failures' && status.state === 'success' && !alreadySent.has(context)) continue;
    wanted.push({ context, ...status });
  }
  // Failures first, then by name: when the cap cuts, what needs attention is still reported, and
  // the same attributes are chosen each time.
  const rank = (status: AttributeStatus): number => (status.state === 'failure' ? 0 : status.state === 'error' ? 1 : 2);
  wanted.sort((a, b) => rank(a) - rank(b) || (a.context < b.context ? -1 : a.context > b.context ? 1 : 0));
  // A context sent before keeps its place, so its status is updated whatever the cap cuts now.
  const kept = wanted.filter((status) => alreadySent.has(status.context));
  const fresh = wanted.filter((status) => !alreadySent.has(status.context)).slice(0, Math.max(0, limit - alreadySent.size));
  return { statuses: [...kept, ...fresh], wanted: wanted.length };
}

/** What the summary status adds when the cap left attributes without a status of their own. */
export function capNote(sent: number, wanted: number, limit = MAX_ATTRIBUTE_STATUSES): string {
  return wanted > sent ? `; statuses for ${sent} of ${wanted} attributes (limit ${limit})` : '';
}

function firstLine(text: string | null): string {
  return (text ?? '').split('\n').map((line) => line.replace(/^error:\s*/, '').trim()).find((line) => line !== '') ?? '';
}

function truncate(text: string): string {
  return text.length <= MAX_DESCRIPTION ? text : `${text.slice(0, MAX_DESCRIPTION - 1)}…`;
}
