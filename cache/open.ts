/** Opening the configured binary cache: a local directory or an S3 bucket with credentials from the configuration. */
import type { CacheLocation } from '../config/cache-location.ts';
import { readS3CredentialsFile, type SecretFile } from '../config/secrets.ts';
import { LocalDirectoryBackend } from './local.ts';
import { S3Backend } from './s3.ts';
import type { MultipartOptions } from './s3-multipart.ts';
import type { CacheBackend } from './types.ts';

/** Where S3 credentials come from: a shared credentials file, else the SDK's default chain (environment, instance role). */
export interface S3CredentialSource {
  credentialsFile?: SecretFile;
  profile: string;
}

/** Opens the cache at `location` (nothing is created until the first write). */
export async function openCacheBackend(
  location: CacheLocation,
  s3: S3CredentialSource = { profile: 'default' },
  options: { multipart?: Partial<MultipartOptions> } = {},
): Promise<CacheBackend> {
  if (location.kind === 'local') return new LocalDirectoryBackend(location.path);
  const credentials = s3.credentialsFile ? await readS3CredentialsFile(s3.credentialsFile, s3.profile) : undefined;
  return new S3Backend({ ...location, ...(credentials ? { credentials } : {}), ...(options.multipart ? { multipart: options.multipart } : {}) });
}
