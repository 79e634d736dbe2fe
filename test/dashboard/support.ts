/**
 * The dashboard on a real pipeline: in-process workers on the runner's Temporal, PostgreSQL and
 * nix-daemon (test/pipeline/harness.ts) and the real app on the same database.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app.ts';
import { openCacheBackend } from '../../cache/open.ts';
import { createLogger } from '../../lib/log.ts';
import { startPipeline, type Pipeline } from '../pipeline/harness.ts';

export const TEMPORAL_UI = 'http://127.0.0.1:8233';

export interface Dashboard {
  pipeline: Pipeline;
  app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * A pipeline and the app reading its database and serving the binary cache its signer writes
 * (a local directory), so full build logs are there to link; `listen` gives the app a real port.
 */
export async function startDashboard(): Promise<Dashboard> {
  const pipeline = await startPipeline();
  const cache = await openCacheBackend(pipeline.config.cache.url);
  const app = buildApp({
    config: pipeline.config,
    log: createLogger({ level: 'error' }),
    deps: { pool: pipeline.db.pool, temporal: pipeline.client, cacheStorage: cache },
    temporalUiUrl: TEMPORAL_UI,
  });
  const close = async (): Promise<void> => {
    await app.close();
    await cache.close();
    await pipeline.close();
  };
  try {
    await app.ready();
  } catch (error) {
    await close();
    throw error;
  }
  return { pipeline, app, close };
}

/** Text meant to become markup if anything forgot to escape it. */
export const HOSTILE = `<img src=x onerror=alert(1)>`;

/**
 * A jobset with one of everything the jobs table shows: a success, a failure whose log holds
 * markup, its dep-failed dependent, an attribute with a hostile name, and one that does not
 * evaluate (with markup in its error).
 */
export async function writeMixedJobset(dir: string): Promise<string> {
  const nonce = randomUUID();
  const file = join(dir, `mixed-${nonce.slice(0, 8)}.nix`);
  await writeFile(
    file,
    `let
  mk = name: script: inputs: builtins.derivation ({
    inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; nonce = "${nonce}";
  } // inputs);
  broken = mk "broken" "echo 'compiling <script>alert(\\"log\\")</script>'; echo 'fails on purpose' >&2; exit 1" { };
in {
  base = mk "base" "echo building base; echo base > $out" { };
  inherit broken;
  dependent = mk "dependent" "echo $broken > $out" { inherit broken; };
  ${JSON.stringify(HOSTILE)} = mk "hostile" "echo hostile > $out" { };
  unevaluable = throw "<b>no</b> & \\"such\\" attribute";
}
`,
  );
  return file;
}
