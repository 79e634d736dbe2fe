/**
 * Ctrl-C for a command that runs to an end (`run`): the first SIGINT or SIGTERM interrupts its
 * work and lets it stop cleanly, but only for so long. A clean stop waits on Temporal (worker
 * shutdown, closing connections), which never answers once its server is gone; so a deadline,
 * or a second Ctrl-C, exits without waiting. Child servers die with the process
 * (lib/managed-process.ts).
 */

/** How long a clean stop may take after the first signal before the process exits anyway. */
export const STOP_DEADLINE_MS = 10_000;

/** Exit status after SIGINT (128 + 2), as shells report it. */
export const INTERRUPTED_EXIT_CODE = 130;

/** Thrown into the interrupted work so that its `finally` blocks run. */
export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }
}

export interface Interrupts {
  /** `work`, or an Interrupted rejection as soon as a signal arrives. */
  race<T>(work: Promise<T>): Promise<T>;
  /** Aborted with an Interrupted error when a signal arrives, for work that must wind down before it ends. */
  readonly abortSignal: AbortSignal;
  /** Whether a signal arrived. */
  readonly signalled: boolean;
  /** Stops listening; the deadline, if armed, stays armed (unref'd: it never keeps the process alive). */
  dispose(): void;
}

/** Listens for SIGINT and SIGTERM from now on; `say` tells the user what happens. */
export function watchInterrupts(say: (line: string) => void, deadlineMs = STOP_DEADLINE_MS): Interrupts {
  let signal: NodeJS.Signals | undefined;
  const controller = new AbortController();
  let interrupt: (error: Interrupted) => void = () => undefined;
  const interrupted = new Promise<never>((_resolve, reject) => {
    interrupt = reject;
  });
  // Nobody may be racing when the signal comes (start-up): that is not an unhandled rejection.
  interrupted.catch(() => undefined);

  const onSignal = (received: NodeJS.Signals): void => {
    if (signal) {
      say(`\n${received} again: exiting without waiting`);
      process.exit(INTERRUPTED_EXIT_CODE);
    }
    signal = received;
    say(`\n${received}: stopping (press Ctrl-C again to exit at once)`);
    setTimeout(() => {
      say(`could not stop cleanly within ${deadlineMs / 1000} s (is the Temporal server gone?): exiting without waiting`);
      process.exit(INTERRUPTED_EXIT_CODE);
    }, deadlineMs).unref();
    const error = new Interrupted(received);
    controller.abort(error);
    interrupt(error);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  return {
    race: (work) => Promise.race([work, interrupted]),
    abortSignal: controller.signal,
    get signalled() {
      return signal !== undefined;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
