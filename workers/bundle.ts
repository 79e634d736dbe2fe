/**
 * The workflow bundle, built once per version of the workflow sources and kept on disk: bundling
 * takes seconds, which a one-shot `harmonia-ci run` should not pay every time.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const WORKFLOWS_DIR = fileURLToPath(new URL('../workflows/', import.meta.url));
export const WORKFLOWS_PATH = join(WORKFLOWS_DIR, 'index.ts');

async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  const sdk = JSON.parse(await readFile(fileURLToPath(new URL('../node_modules/@temporalio/workflow/package.json', import.meta.url)), 'utf8'));
  hash.update(`sdk ${sdk.version}\n`);
  for (const name of (await readdir(WORKFLOWS_DIR)).sort()) {
    if (!name.endsWith('.ts')) continue;
    hash.update(`${name}\n`).update(await readFile(join(WORKFLOWS_DIR, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Returns `{ code }` for Worker.create's `workflowBundle`, from the cache directory when possible. */
export async function loadWorkflowBundle(cacheDir: string): Promise<{ code: string }> {
  const file = join(cacheDir, `workflows-${await sourceHash()}.js`);
  const cached = await readFile(file, 'utf8').catch(() => undefined);
  if (cached !== undefined) return { code: cached };
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  await mkdir(cacheDir, { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  await writeFile(partial, code);
  await rename(partial, file);
  return { code };
}

const noop = (): void => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
