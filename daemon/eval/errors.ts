/** Typed errors of the evaluation engine; messages name the thing and the fix. */

/** Base class: any evaluation that did not produce its job stream. */
export class EvaluationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The source as a whole could not be evaluated (syntax error, missing attribute, bad flake). */
export class EvaluationFailedError extends EvaluationError {
  constructor(
    message: string,
    /** Nix's own diagnostic, ANSI escapes removed. */
    readonly nixMessage: string,
  ) {
    super(nixMessage === '' ? message : `${message}:\n${nixMessage}`);
  }
}

/** The evaluation ran past its time limit; its processes were killed. */
export class EvaluationTimeoutError extends EvaluationError {
  constructor(readonly timeoutMs: number) {
    super(`evaluation exceeded its time limit of ${timeoutMs} ms and was killed; if it needs longer, raise eval-timeout in .harmonia-ci.toml (--timeout on the command line)`);
  }
}

/** The evaluation was cancelled through its AbortSignal; its processes were killed. */
export class EvaluationAbortedError extends EvaluationError {
  constructor(reason?: unknown) {
    super(`evaluation was cancelled${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
  }
}

/** A line of nix-eval-jobs output that is not a job or an error line. */
export class JobLineError extends EvaluationError {
  constructor(
    message: string,
    readonly line: string,
  ) {
    super(`${message} in nix-eval-jobs output line: ${line.length > 300 ? `${line.slice(0, 300)}…` : line}`);
  }
}

/** An attribute path given by the user that is not valid Nix attribute path syntax. */
export class AttrPathError extends EvaluationError {}
