/**
 * What the signer, the builder's upload, the HTTP server and gc need of a binary cache store.
 * Two backends implement it with one layout (cache/layout.ts): an S3 bucket and a local directory.
 *
 * Glossary: an *object* is one file of the cache under its *key*; an *upload target* is where an
 * untrusted uploader (a builder) may put the bytes of one announced object — presigned PUT URLs
 * for S3 (one, or one per part of a large object), a staging file for a local directory. An upload
 * is *staged* apart from the served layout (cache/layout.ts `stagingKey`); the signer reads it
 * back, and only then *promotes* it to its key, or *discards* it.
 */
import type { Readable } from 'node:stream';

/** One object as the storage reports it. */
export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
  /** SHA-256 of the stored bytes, `sha256:<base32>`, when the storage knows it. */
  sha256?: string;
}

/** An object (or a byte range of it) being read. */
export interface ObjectStream {
  object: StoredObject;
  /** First and last byte (inclusive) of the body within the object. */
  start: number;
  end: number;
  contentEncoding?: string;
  body: Readable;
}

/** A byte range as in `Range: bytes=start-end` (end inclusive; absent means to the end). */
export interface ByteRange {
  start: number;
  end?: number;
}

/** An object a builder announces before uploading it. */
export interface UploadSpec {
  key: string;
  size: number;
  /** `sha256:<base32>` of the exact bytes. */
  sha256: string;
}

/** Where a builder puts one object; it holds no credential beyond this one object. */
export type UploadTarget =
  | {
      kind: 'put';
      /** A presigned URL scoped to one key, one length and one SHA-256 checksum. */
      url: string;
      /** Headers the signature covers; the PUT must send them as given. */
      headers: Record<string, string>;
      /** Milliseconds since the epoch after which the storage refuses the URL. */
      expiresAt: number;
    }
  | {
      kind: 'multipart';
      /** Bytes per part; the last part holds the rest. */
      partSize: number;
      /** Presigned PUTs of the parts not yet uploaded (parts already there are left out), each scoped to its length. */
      parts: Array<{ number: number; url: string; headers: Record<string, string> }>;
      expiresAt: number;
    }
  | {
      kind: 'file';
      /** A staging file inside the cache directory, only reachable when builder and signer share a machine. */
      path: string;
      expiresAt: number;
    };

/** A binary cache store. Keys are those of cache/layout.ts. */
export interface CacheBackend {
  /** Where the cache lives, for people: `s3://bucket at http://host`, `/var/cache/harmonia-ci`. */
  readonly description: string;
  /** Resolves when the storage answers; rejects with what is wrong. */
  check(): Promise<void>;
  close(): Promise<void>;

  head(key: string): Promise<StoredObject | undefined>;
  /** The whole of a small object (narinfo, nix-cache-info), or undefined when absent. */
  read(key: string): Promise<Buffer | undefined>;
  /** Opens an object (or a range of it, clamped to its size); undefined when absent. */
  get(key: string, range?: ByteRange): Promise<ObjectStream | undefined>;
  /**
   * Writes a small object. With `ifAbsent` an existing object is kept and false returned (first
   * writer wins), atomically where the storage allows.
   */
  put(key: string, body: Uint8Array, options: { contentType: string; contentEncoding?: string; ifAbsent?: boolean }): Promise<boolean>;
  delete(keys: readonly string[]): Promise<void>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix?: string): AsyncIterable<StoredObject>;

  /**
   * A target for one upload, valid for `lifetimeMs`, staging the bytes apart from the served
   * layout; above the storage's multipart threshold, one target per part.
   */
  uploadTarget(spec: UploadSpec, options: { contentType: string; contentEncoding?: string; lifetimeMs: number }): Promise<UploadTarget>;
  /**
   * The staged upload once it has all arrived (a multipart upload's parts are joined here), or
   * undefined. Its size is what arrived, which need not be what was announced.
   */
  stagedUpload(spec: UploadSpec): Promise<StoredObject | undefined>;
  /** The bytes of a staged upload, to be read back before anything refers to them. */
  readStaged(spec: UploadSpec): Promise<Readable | undefined>;
  /**
   * Moves a staged upload the signer has verified to its key and removes the staging. An object
   * already at the key is kept (first writer wins) and false returned, except a build log
   * (layout.ts `isReplaceable`), which the newer upload replaces.
   */
  promoteUpload(spec: UploadSpec): Promise<boolean>;
  /** Removes a staged upload (one the signer refused), and any unfinished parts of it. */
  discardUpload(spec: UploadSpec): Promise<void>;
  /** Removes staged uploads (and unfinished multipart uploads) older than `before`; returns how many. */
  removeStaleUploads(before: Date): Promise<number>;
}
