/** Secrets named by path in the configuration, read only when a role needs them. */
import { readFile } from 'node:fs/promises';
import { SecretFileError } from './errors.ts';

/**
 * A secret kept in a file. The configuration holds only the path, so a config
 * object can be logged or passed to an unprivileged role without leaking anything;
 * the file is read on each `read()` so rotating it needs no restart.
 */
export class SecretFile {
  constructor(
    /** Dotted configuration key that named the file, for error messages. */
    readonly key: string,
    /** Absolute path of the file. */
    readonly path: string,
  ) {}

  /** The file's contents without surrounding whitespace. */
  async read(): Promise<string> {
    try {
      return (await readFile(this.path, 'utf8')).trim();
    } catch (error) {
      throw new SecretFileError(this.key, this.path, error);
    }
  }

  toJSON(): string {
    return `<secret file ${this.path}>`;
  }
}

/** Static S3 credentials. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Credentials from an AWS-style shared credentials file (`[profile]` sections with
 * `aws_access_key_id`, `aws_secret_access_key`, optional `aws_session_token`).
 */
export async function readS3CredentialsFile(file: SecretFile, profile: string): Promise<S3Credentials> {
  const text = await file.read();
  const section = parseIniSection(text, profile);
  const accessKeyId = section.get('aws_access_key_id');
  const secretAccessKey = section.get('aws_secret_access_key');
  if (!accessKeyId || !secretAccessKey) {
    throw new SecretFileError(
      file.key,
      file.path,
      new Error(`profile [${profile}] needs aws_access_key_id and aws_secret_access_key`),
    );
  }
  const sessionToken = section.get('aws_session_token');
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

function parseIniSection(text: string, wanted: string): Map<string, string> {
  const values = new Map<string, string>();
  let current: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      current = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (current === wanted && eq > 0) values.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return values;
}
