/**
 * What the two commit statuses of an eval say, from its state in PostgreSQL:
 * `harmonia-ci/nix-eval` (did the jobset evaluate) and `harmonia-ci/nix-build` (did its builds
 * succeed), each pending → success / failure / error (cancelled or superseded).
 */
import type { EvalProgress, EvalStatus } from '../workflows/types.ts';
import { BUILD_CONTEXT, EVAL_CONTEXT, type StatusState } from './types.ts';

/** GitHub refuses longer descriptions. */
export const MAX_DESCRIPTION = 140;

export interface EvalFacts {
  status: EvalStatus;
  error: string | null;
  /** Attributes that evaluated to a derivation, and those that failed to evaluate. */
  jobs: number;
  attrErrors: number;
  progress: EvalProgress;
  /** For a cancelled eval: the commit of the newer eval on the same ref. */
  supersededBy?: string;
  /** For a skipped eval: the eval whose results it reuses. */
  copiedFrom?: string;
  /** Appended to the build status (the cap on per-attribute statuses). */
  buildNote?: string;
}

export interface DesiredStatus {
  context: string;
  state: StatusState;
  description: string;
}

/** Both statuses for an eval. */
export function describeStatuses(facts: EvalFacts): DesiredStatus[] {
  return [
    { context: EVAL_CONTEXT, ...evalStatus(facts) },
    { context: BUILD_CONTEXT, ...withNote(buildStatus(facts), facts.buildNote) },
  ].map((s) => ({ ...s, description: truncate(s.description) }));
}

function evalStatus(facts: EvalFacts): Omit<DesiredStatus, 'context'> {
  switch (facts.status) {
    case 'queued':
      return { state: 'pending', description: 'Queued for evaluation' };
    case 'running':
      return { state: 'pending', description: 'Evaluating' };
    case 'skipped':
      return { state: 'success', description: `Same tree as eval ${facts.copiedFrom ?? '?'}: results reused` };
    case 'failed':
      return { state: 'failure', description: `Evaluation failed: ${firstLine(facts.error) || 'see the eval page'}` };
    case 'cancelled':
      return { state: 'error', description: stopped(facts) };
    case 'succeeded': {
      const total = facts.jobs + facts.attrErrors;
      if (facts.attrErrors > 0) return { state: 'failure', description: `${facts.attrErrors} of ${total} attributes failed to evaluate` };
      return { state: 'success', description: `${facts.jobs} ${facts.jobs === 1 ? 'job' : 'jobs'} evaluated` };
    }
  }
}

function buildStatus(facts: EvalFacts): Omit<DesiredStatus, 'context'> {
  if (facts.status === 'queued' || facts.status === 'running') return { state: 'pending', description: 'Waiting for the evaluation' };
  if (facts.status === 'failed') return { state: 'failure', description: 'Not built: the evaluation failed' };
  if (facts.status === 'cancelled') return { state: 'error', description: stopped(facts) };
  const p = facts.progress;
  if (p.total === 0) return { state: 'success', description: 'Nothing to build' };
  const parts = [`${p.succeeded + p.cached}/${p.total} built${p.cached > 0 ? ` (${p.cached} cached)` : ''}`];
  if (p.failed + p.timedOut > 0) parts.push(`${p.failed + p.timedOut} failed`);
  if (p.depFailed > 0) parts.push(`${p.depFailed} dep-failed`);
  if (p.cancelled > 0) parts.push(`${p.cancelled} cancelled`);
  if (!p.done && p.building > 0) parts.push(`${p.building} building`);
  const description = parts.join(', ');
  if (!p.done) return { state: 'pending', description };
  if (p.failed + p.timedOut + p.depFailed > 0) return { state: 'failure', description };
  if (p.cancelled > 0) return { state: 'error', description };
  return { state: 'success', description };
}

function withNote(status: Omit<DesiredStatus, 'context'>, note: string | undefined): Omit<DesiredStatus, 'context'> {
  return note ? { ...status, description: `${status.description}${note}` } : status;
}

function stopped(facts: EvalFacts): string {
  return facts.supersededBy ? `Superseded by ${facts.supersededBy.slice(0, 12)}` : 'Cancelled';
}

function firstLine(text: string | null): string {
  return (text ?? '').split('\n').map((line) => line.replace(/^error:\s*/, '').trim()).find((line) => line !== '') ?? '';
}

function truncate(text: string): string {
  return text.length <= MAX_DESCRIPTION ? text : `${text.slice(0, MAX_DESCRIPTION - 1)}…`;
}
