/**
 * Reading the service addresses test/run.ts exports. A missing variable is a failure,
 * never a skip: a suite that quietly skips its service tests proves nothing.
 */

/** The value of `name`, or an error telling the reader to run the file through the runner. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run through npm test (or \`node --import tsx test/run.ts <file>\`), which starts the services and sets it.`);
  }
  return value;
}

/** Connection settings of the SeaweedFS S3 gateway started by test/run.ts. */
export function requireTestS3(): { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string } {
  return {
    endpoint: requireEnv('HARMONIA_TEST_S3_ENDPOINT'),
    bucket: requireEnv('HARMONIA_TEST_S3_BUCKET'),
    accessKeyId: requireEnv('HARMONIA_TEST_S3_ACCESS_KEY_ID'),
    secretAccessKey: requireEnv('HARMONIA_TEST_S3_SECRET_ACCESS_KEY'),
    region: 'us-east-1',
  };
}
