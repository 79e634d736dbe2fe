/** Helpers for executor tests: executors on the test daemon, requests from real `.drv` files, caches written by nix copy. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDerivation, type Derivation } from '../../daemon/core/derivation.ts';
import { parsePublicKey, type PublicKey } from '../../daemon/core/signing.ts';
import { createExecutor, type Executor, type ExecutorOptions } from '../../daemon/executor/executor.ts';
import type { BuildRequest } from '../../daemon/executor/types.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { daemonSocket, nixCli, nonce, scratchDir } from '../protocol/helpers.ts';

/** An executor on the test daemon with its own roots directory; close() closes its pool. */
export async function testExecutor(options: Partial<ExecutorOptions> = {}): Promise<{ executor: Executor; pool: DaemonPool; rootsDir: string; close(): Promise<void> }> {
  const pool = options.pool ?? new DaemonPool({ socketPath: daemonSocket() });
  const rootsDir = options.rootsDir ?? join(scratchDir('harmonia-roots-'), 'roots');
  const executor = await createExecutor({ ...options, pool, rootsDir });
  return { executor, pool, rootsDir, close: () => pool.close() };
}

/** Reads and parses a `.drv` from the store. */
export function readDrv(path: string): Derivation {
  return parseDerivation(readFileSync(path, 'utf8'));
}

/** The output paths a derivation uses from its input derivations, read from their `.drv` files. */
export function inputOutputs(drv: Derivation): string[] {
  const paths: string[] = [];
  for (const [inputDrv, names] of drv.inputDrvs) {
    const outputs = readDrv(inputDrv).outputs;
    for (const name of names) paths.push(outputs.get(name)!.path);
  }
  return paths;
}

/** A build request for `drvPath` as the build activity would make it. */
export function requestFor(drvPath: string, extra: Partial<BuildRequest> = {}): BuildRequest {
  const drv = readDrv(drvPath);
  return { drvPath, drv, inputPaths: inputOutputs(drv), ...extra };
}

/** A signing key pair made by nix-store --generate-binary-cache-key. */
export function generateKey(name = `test-${nonce()}`): { secretKeyFile: string; publicKey: PublicKey; publicKeyText: string } {
  const dir = scratchDir('harmonia-key-');
  const secretKeyFile = join(dir, 'secret');
  const publicFile = join(dir, 'public');
  nixCli('nix-store', ['--generate-binary-cache-key', name, secretKeyFile, publicFile]);
  const publicKeyText = readFileSync(publicFile, 'utf8').trim();
  return { secretKeyFile, publicKey: parsePublicKey(publicKeyText), publicKeyText };
}

/** Copies `paths` (with their closure) into a fresh file:// cache with nix copy; returns its directory and URL. */
export function nixCopyToCache(paths: string[], options: { compression?: string; secretKeyFile?: string; dir?: string } = {}): { dir: string; url: string } {
  const dir = options.dir ?? join(scratchDir('harmonia-cache-'), 'cache');
  const params = [`compression=${options.compression ?? 'none'}`];
  if (options.secretKeyFile) params.push(`secret-key=${options.secretKeyFile}`);
  nixCli('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--to', `file://${dir}?${params.join('&')}`, ...paths]);
  return { dir, url: `file://${dir}` };
}
