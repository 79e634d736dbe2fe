/** The evaluation engine: from a flake or `.nix` file to a stream of nix-eval-jobs-shaped job lines. */
export { evaluateJobs } from './evaluate.ts';
export { sourceFromArgument } from './source.ts';
export { parseAttrPath, formatAttrPath } from './attr-path.ts';
export { parseNixEvalJobsLine } from './job-line.ts';
export {
  AttrPathError,
  EvaluationAbortedError,
  EvaluationError,
  EvaluationFailedError,
  EvaluationTimeoutError,
  JobLineError,
} from './errors.ts';
export { isEvalJobError } from './types.ts';
export type * from './types.ts';
