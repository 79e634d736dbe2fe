/**
 * One word and one line for where an eval stands. `evaluations.status` is only the evaluation
 * phase; once that succeeded, the eval's state is its builds' progress. The line is the text of
 * the `harmonia-ci/nix-build` commit status, so the dashboard says what the forge shows.
 */
import { describeStatuses } from '../../forges/statuses.ts';
import { BUILD_CONTEXT } from '../../forges/types.ts';
import type { EvalFacts } from '../../queries/eval-overviews.ts';

export type EvalState = 'queued' | 'evaluating' | 'building' | 'succeeded' | 'failed' | 'cancelled';

/** The overall state of an eval: evaluation first, then its builds. */
export function evalState(facts: EvalFacts): EvalState {
  switch (facts.status) {
    case 'queued':
      return 'queued';
    case 'running':
      return 'evaluating';
    case 'failed':
      return 'failed';
    case 'cancelled':
      return 'cancelled';
    case 'succeeded':
    case 'skipped': {
      const p = facts.progress;
      if (!p.done) return 'building';
      if (p.failed + p.timedOut + p.depFailed > 0 || facts.attrErrors > 0) return 'failed';
      if (p.cancelled > 0) return 'cancelled';
      return 'succeeded';
    }
  }
}

/** True when nothing about the eval can change any more without a rebuild. */
export function evalFinished(facts: Pick<EvalFacts, 'status' | 'progress'>): boolean {
  if (facts.status === 'failed' || facts.status === 'cancelled') return true;
  return (facts.status === 'succeeded' || facts.status === 'skipped') && facts.progress.done;
}

/** `12/40 built (30 cached), 1 failed`: the build commit status of the eval, word for word. */
export function describeProgress(facts: EvalFacts): string {
  const statuses = describeStatuses({
    status: facts.status,
    error: facts.error,
    jobs: facts.jobCount,
    attrErrors: facts.attrErrors,
    progress: facts.progress,
    ...(facts.copiedFrom ? { copiedFrom: facts.copiedFrom } : {}),
  });
  return statuses.find((s) => s.context === BUILD_CONTEXT)?.description ?? '';
}
