/** Completing a job from the `.drv` file its evaluation wrote to the local store. */
import { readFileSync } from 'node:fs';
import { parseDerivation, type Derivation } from '../core/derivation.ts';
import { EvaluationError } from './errors.ts';
import { jobFromDerivation, type JobExtras } from './job-line.ts';
import type { EvalJobLine } from './types.ts';

/**
 * Reads and parses `drvPath` (kept in `keep` when given), then builds the attribute's job line from it. The read is
 * synchronous: a `.drv` is small, and a sync read costs a fraction of an async one's
 * round trip through the thread pool, which for 10,000 jobs was most of the evaluator's own time.
 */
export function completeJob(attrPath: string[], drvPath: string, name: string, extras: JobExtras = {}, keep?: Map<string, Derivation>): EvalJobLine {
  let text: string;
  try {
    text = readFileSync(drvPath, 'utf8');
  } catch (error) {
    throw new EvaluationError(
      `cannot read derivation '${drvPath}' written by the evaluation (${error instanceof Error ? error.message : String(error)}); ` +
        'the evaluator must run on the machine whose Nix store it evaluates into',
      { cause: error },
    );
  }
  const drv = parseDerivation(text);
  keep?.set(drvPath, drv);
  return jobFromDerivation(attrPath, drvPath, name, drv, extras);
}
