/** Where the binary cache lives: a local directory or an S3 bucket (`s3://bucket?endpoint=…&region=…`). */
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

export type CacheLocation =
  | { kind: 'local'; path: string }
  | { kind: 's3'; bucket: string; region?: string; endpoint?: string; forcePathStyle: boolean };

const S3_PARAMETERS = new Set(['region', 'endpoint']);

export const CACHE_URL_EXPECTATION =
  'an absolute directory, a file:// URL, or s3://bucket with optional ?endpoint=URL&region=NAME';

/** Parses a cache URL; returns an explanation instead when it is not usable. */
export function parseCacheLocation(text: string): CacheLocation | { problem: string } {
  if (text.startsWith('s3://')) return parseS3(text);
  if (text.startsWith('file://')) return { kind: 'local', path: fileURLToPath(text) };
  if (isAbsolute(text)) return { kind: 'local', path: text };
  return { problem: `expected ${CACHE_URL_EXPECTATION}` };
}

function parseS3(text: string): CacheLocation | { problem: string } {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return { problem: `expected ${CACHE_URL_EXPECTATION}` };
  }
  if (!parsed.hostname || (parsed.pathname !== '' && parsed.pathname !== '/')) {
    return { problem: 'expected s3://bucket with the bucket name only (no path)' };
  }
  const unknown = [...parsed.searchParams.keys()].filter((name) => !S3_PARAMETERS.has(name));
  if (unknown.length > 0) {
    return { problem: `unknown S3 parameter ${unknown.map((n) => `"${n}"`).join(', ')}; known: endpoint, region` };
  }
  const endpoint = parsed.searchParams.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    return { problem: `expected endpoint to be an http:// or https:// URL, got "${endpoint}"` };
  }
  const region = parsed.searchParams.get('region') ?? undefined;
  return {
    kind: 's3',
    bucket: parsed.hostname,
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    // Like Nix: a custom endpoint (MinIO, SeaweedFS, Garage) implies path-style addressing.
    forcePathStyle: endpoint !== undefined,
  };
}
