/**
 * Shared pieces of the cache tests: real store paths built by the real Nix, both storage backends
 * on real storage (a temporary directory, a fresh bucket on the runner's SeaweedFS), the cache
 * routes on a real listener, and the real `nix-store` substituting into a throwaway store.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { startCacheServer } from '../../api/cache-server.ts';
import { readText } from '../../cache/backend-reader.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { S3Backend } from '../../cache/s3.ts';
import type { MultipartOptions } from '../../cache/s3-multipart.ts';
import type { CacheBackend } from '../../cache/types.ts';
import { parseNarHash } from '../../daemon/core/hash.ts';
import { parseNarInfo } from '../../daemon/core/narinfo.ts';
import type { BuiltOutput } from '../../workflows/types.ts';
import { SignerDerivations } from '../../activities/signer/derivations.ts';
import { createSignerActivities } from '../../activities/signer/index.ts';
import type { SignerActivities } from '../../activities/types.ts';
import type { SecretKey } from '../../daemon/core/signing.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { daemonSocket } from '../protocol/helpers.ts';
import { requireTestS3 } from '../helpers/env.ts';

export const NIX_OPTIONS = ['--option', 'build-users-group', '', '--option', 'substituters', ''];
export const NIX_COMMAND = ['--extra-experimental-features', 'nix-command'];

export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `harmonia-cache-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export const nonce = (): string => randomBytes(6).toString('hex');

/** Runs a Nix tool; returns its exit status and output instead of throwing. */
export async function runNix(tool: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const result = await execa(tool, args, { reject: false });
  return { ok: result.exitCode === 0, stdout: result.stdout, stderr: result.stderr };
}

async function mustNix(tool: string, args: readonly string[]): Promise<string> {
  const result = await runNix(tool, args);
  if (!result.ok) throw new Error(`${tool} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/**
 * Builds two derivations with the real nix-build: `dep` (a file) and `top` (a tree with an
 * executable, a symlink, and a reference to dep). Returns their outputs as the store records them.
 */
export async function buildOutputs(dir: string): Promise<{ dep: BuiltOutput; top: BuiltOutput; depDrv: string; topDrv: string }> {
  const token = nonce();
  const file = join(dir, `outputs-${token}.nix`);
  await writeFile(
    file,
    `let
  dep = builtins.derivation { name = "cache-dep-${token}"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "echo dependency ${token} > $out; echo built dep" ]; };
  top = builtins.derivation { name = "cache-top-${token}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; inherit dep;
    args = [ "-c" "mkdir -p $out/bin; echo $dep > $out/uses; printf '#!/bin/sh\\necho hi\\n' > $out/bin/hi; chmod +x $out/bin/hi; ln -s uses $out/link; head -c 300000 /dev/urandom > $out/blob; echo built top" ]; };
in { inherit dep top; }
`,
  );
  const built = (await mustNix('nix-build', [...NIX_OPTIONS, '--no-out-link', file, '-A', 'dep', '-A', 'top'])).trim().split('\n');
  const [depDrv, topDrv] = (await mustNix('nix-instantiate', [...NIX_OPTIONS, file, '-A', 'dep', '-A', 'top'])).trim().split('\n');
  const [dep, top] = await pathInfos(built);
  return { dep: dep!, top: top!, depDrv: depDrv!, topDrv: topDrv! };
}

/** What the store records about each path, as the builder reports outputs. */
export async function pathInfos(paths: string[]): Promise<BuiltOutput[]> {
  const json = JSON.parse(await mustNix('nix', [...NIX_COMMAND, 'path-info', '--json', ...paths])) as Array<{
    path: string;
    narHash: string;
    narSize: number;
    references: string[];
  }>;
  return paths.map((path) => {
    const info = json.find((entry) => entry.path === path)!;
    return { name: 'out', path, narHash: parseNarHash(info.narHash), narSize: info.narSize, references: info.references };
  });
}

/** A backend on real storage and how to dispose of it. */
export interface TestBackend {
  name: 'local' | 's3';
  backend: CacheBackend;
  close(): Promise<void>;
}

/** A cache directory in a fresh temporary directory. */
export async function localBackend(): Promise<TestBackend> {
  const tmp = await tempDir('local');
  return { name: 'local', backend: new LocalDirectoryBackend(join(tmp.dir, 'cache')), close: tmp.remove };
}

/** A fresh bucket on the runner's SeaweedFS, so collections and listings see only this test's objects. */
export async function s3Backend(options: { multipart?: Partial<MultipartOptions> } = {}): Promise<TestBackend & { bucket: string; url: string }> {
  const s3 = requireTestS3();
  const bucket = `cache-test-${nonce()}`;
  const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  const admin = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  admin.destroy();
  const backend = new S3Backend({ bucket, endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials, ...options });
  return { name: 's3', backend, bucket, url: `s3://${bucket}?endpoint=${s3.endpoint}&region=${s3.region}`, close: () => backend.close() };
}

/** The cache routes alone on a loopback port, as `harmonia-ci cache serve` runs them. */
export async function serveCache(backend: CacheBackend): Promise<{ url: string; close(): Promise<void> }> {
  const server = await startCacheServer({ backend, host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${server.port}`, close: () => server.close() };
}

/** `nix-store -r` into a throwaway chroot store that has never held the paths, from `url` only. */
export async function substitute(storeRoot: string, paths: string[], url: string, trustedKey: string): Promise<{ ok: boolean; stderr: string }> {
  return runNix('nix-store', [
    '--realise',
    ...paths,
    '--store',
    storeRoot,
    '--option',
    'build-users-group',
    '',
    '--option',
    'substituters',
    url,
    '--option',
    'trusted-public-keys',
    trustedKey,
    // A store that cannot substitute must not fall back to building the path locally.
    '--option',
    'max-jobs',
    '0',
  ]);
}

/** Every narinfo in the cache points at a NAR that is there. */
export async function assertEveryNarInfoHasItsNar(backend: CacheBackend): Promise<number> {
  let count = 0;
  for await (const object of backend.list()) {
    if (!object.key.endsWith('.narinfo')) continue;
    const info = parseNarInfo((await readText(backend, object.key))!);
    const nar = await backend.head(info.url);
    if (!nar) throw new Error(`${object.key} points at ${info.url}, which is missing`);
    if (nar.size !== info.fileSize) throw new Error(`${info.url} is ${nar.size} bytes, ${object.key} says ${info.fileSize}`);
    count++;
  }
  return count;
}

/**
 * Signer activities over `backend` that read derivations and input references from the test
 * store as well, as a signer sharing a machine with the evaluator does (outputs here are built by
 * nix-build, whose `.drv` files were never published). Close the returned pool after use.
 */
export function signerOnTestStore(
  backend: CacheBackend,
  secretKey: SecretKey,
  options: { uploadLifetimeMs?: number } = {},
): SignerActivities & { pool: DaemonPool } {
  const pool = new DaemonPool({ socketPath: daemonSocket() });
  const activities = createSignerActivities({ backend, secretKey, derivations: new SignerDerivations({ backend, store: pool }), ...options });
  return { ...activities, pool };
}
