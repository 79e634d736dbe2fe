/** Completing a job from the `.drv` file its evaluation wrote to the local store. */
import { readFile } from 'node:fs/promises';
import { parseDerivation } from '../core/derivation.ts';
import { EvaluationError } from './errors.ts';
import { jobFromDerivation, type JobExtras } from './job-line.ts';
import type { EvalJobLine } from './types.ts';

/** Reads and parses `drvPath`, then builds the attribute's job line from it. */
export async function completeJob(attrPath: string[], drvPath: string, name: string, extras: JobExtras = {}): Promise<EvalJobLine> {
  let text: string;
  try {
    text = await readFile(drvPath, 'utf8');
  } catch (error) {
    throw new EvaluationError(
      `cannot read derivation '${drvPath}' written by the evaluation (${error instanceof Error ? error.message : String(error)}); ` +
        'the evaluator must run on the machine whose Nix store it evaluates into',
      { cause: error },
    );
  }
  return jobFromDerivation(attrPath, drvPath, name, parseDerivation(text), extras);
}
