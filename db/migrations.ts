/** The numbered `.sql` files under migrations/, read and checked for gaps. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MigrationFileError } from './errors.ts';

export interface Migration {
  version: number;
  /** File name, e.g. `0003_evaluations.sql`. */
  file: string;
  sql: string;
  /** SHA-256 of the file's bytes, hex. */
  checksum: string;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/** Migrations in version order; throws `MigrationFileError` on a stray name or a duplicate. */
export function loadMigrations(directory = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(directory)
    .filter((name) => name.endsWith('.sql'))
    .sort();
  const migrations = files.map((file, index): Migration => {
    const match = FILE_NAME.exec(file);
    if (!match) {
      throw new MigrationFileError(`${join(directory, file)}: migration files are named NNNN_lowercase_words.sql`);
    }
    const version = Number(match[1]);
    // Numbers are handed out ahead to work that may land in any order, so a gap is allowed (the
    // migrator applies whatever is not applied yet); a duplicate never is.
    const previous = index === 0 ? 0 : Number(FILE_NAME.exec(files[index - 1]!)?.[1] ?? 0);
    if (version <= previous) {
      throw new MigrationFileError(`${join(directory, file)}: version ${version} is used twice; give one of them the next free number`);
    }
    const bytes = readFileSync(join(directory, file));
    return { version, file, sql: bytes.toString('utf8'), checksum: createHash('sha256').update(bytes).digest('hex') };
  });
  if (migrations.length === 0) throw new MigrationFileError(`${directory}: no migration files found`);
  return migrations;
}
