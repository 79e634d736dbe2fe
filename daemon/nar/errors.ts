/** Typed errors of the NAR layer. */

/** A byte stream that is not a canonical NAR; `offset` is the byte position of the problem. */
export class NarError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`invalid NAR at byte ${offset}: ${reason}`);
    this.name = 'NarError';
  }
}

/** A filesystem object that cannot be packed into a NAR or a destination that cannot be unpacked into. */
export class NarFileError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'NarFileError';
  }
}
