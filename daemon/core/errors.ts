/** Typed errors of the pure Nix core. Each names the offending input and what would be accepted. */

/** Base class: every error thrown by daemon/core is a CoreError. */
export class CoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Text that is not valid Nix base32 (wrong alphabet or a length no digest encodes to). */
export class Base32Error extends CoreError {}

/** A hash string Nix would reject: unknown algorithm, wrong length, bad digits or a type mismatch. */
export class HashError extends CoreError {}

/** A store path or store path name that violates Nix's rules. */
export class StorePathError extends CoreError {}

/** A `.drv` file (ATerm) that does not parse; `offset` is the character position of the problem. */
export class DerivationError extends CoreError {
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(offset === undefined ? message : `${message} (at character ${offset})`);
  }
}

/** A `.narinfo` file that Nix would consider corrupt. */
export class NarInfoError extends CoreError {}

/** A malformed signing key, signature or key name. */
export class SigningError extends CoreError {}
