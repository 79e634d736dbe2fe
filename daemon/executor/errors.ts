/** Typed errors of the build executor. Build failures are outcomes, not errors; these are faults. */

/** Base class: every error thrown by daemon/executor is an ExecutorError. */
export class ExecutorError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An input could not be substituted from the binary cache. `path` is the store path concerned. */
export class SubstitutionError extends ExecutorError {
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`cannot substitute ${path}: ${message}`, options);
  }
}

/** A cache holds a narinfo that does not parse: that path's fault, not the cache's. */
export class CorruptNarInfoError extends SubstitutionError {}

/** A cache answered a request with an error status: the cache is in trouble, not the path. */
export class CacheRequestError extends SubstitutionError {}

/** The cache serves a compression this Node cannot decode. */
export class UnsupportedCompressionError extends SubstitutionError {
  constructor(path: string, readonly compression: string) {
    super(
      path,
      `its NAR is compressed with '${compression}', which this builder cannot decompress (it reads none, gzip, br, ` +
        `and zstd through the zstd command); publish with one of those, e.g. nix copy --to 'file:///cache?compression=none'`,
    );
  }
}

/** A local input differs from its canonical NAR hash and cannot be replaced. */
export class FrankenbuildError extends ExecutorError {}

/** The zstd command is missing or failed (corrupt input, killed). */
export class ZstdError extends ExecutorError {}
