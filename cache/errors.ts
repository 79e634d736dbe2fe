/** Typed errors of the binary cache storage. */

/** Base class: every error thrown by cache/ is a CacheError. */
export class CacheError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The storage cannot be reached or refused us (credentials, bucket, permissions). */
export class CacheStorageError extends CacheError {}

/** A key that is not part of the cache layout (or tries to leave the cache directory). */
export class InvalidKeyError extends CacheError {
  constructor(readonly key: string) {
    super(`'${key}' is not a binary cache object key: expected nix-cache-info, <hash>.narinfo, nar/<hash>.nar.zst or log/<drv name>`);
  }
}

/** An uploaded object that is absent or differs from what was announced. */
export class UploadMismatchError extends CacheError {}
