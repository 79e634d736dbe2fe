/** Typed errors of the database layer. */

/** The database was migrated by a newer harmonia-ci than this one. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly databaseVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `database schema is at version ${databaseVersion}, this harmonia-ci understands up to ${knownVersion}; upgrade harmonia-ci`,
    );
    this.name = 'SchemaTooNewError';
  }
}

/** The database lacks migrations this harmonia-ci needs. */
export class SchemaOutdatedError extends Error {
  constructor(
    readonly databaseVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `database schema is at version ${databaseVersion}, this harmonia-ci needs version ${knownVersion}; run \`harmonia-ci migrate\``,
    );
    this.name = 'SchemaOutdatedError';
  }
}

/** An applied migration file differs from the one that was applied. */
export class MigrationChecksumError extends Error {
  constructor(
    readonly version: number,
    readonly file: string,
    readonly appliedChecksum: string,
    readonly fileChecksum: string,
  ) {
    super(
      `migration ${file} (version ${version}) was changed after it was applied to this database ` +
        `(applied checksum ${appliedChecksum.slice(0, 12)}…, file ${fileChecksum.slice(0, 12)}…); ` +
        'restore the original file and put the change in a new migration',
    );
    this.name = 'MigrationChecksumError';
  }
}

/** The migrations directory itself is malformed (bad name, gap, duplicate). */
export class MigrationFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationFileError';
  }
}

/** The embedded PostgreSQL could not be started. */
export class EmbeddedDatabaseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EmbeddedDatabaseError';
  }
}

/** A configured PostgreSQL server did not answer. */
export class DatabaseUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnreachableError';
  }
}

/** A migration's SQL failed; the transaction was rolled back, earlier migrations stay applied. */
export class MigrationFailedError extends Error {
  constructor(
    readonly file: string,
    detail: string,
    options: { cause: unknown },
  ) {
    super(`migration ${file} failed: ${detail}; nothing of it was applied`, options);
    this.name = 'MigrationFailedError';
  }
}
