/**
 * The workflow bundle, built once per version of the workflow sources and kept on disk: bundling
 * takes seconds, which a one-shot `harmonia-ci run` should not pay every time. It is built by a
 * child process (bundle-child.mjs), which takes webpack's memory with it when it ends.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  await mkdir(cacheDir, { recursive: true });
  // In a process of its own: webpack leaves about 100 MiB behind in the heap of the process that ran it.
  const child = spawn(process.execPath, [BUNDLE_CHILD, WORKFLOWS_PATH, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) {
    throw new Error(`bundling the workflow code (${WORKFLOWS_PATH}) failed (${signal ?? `exit code ${String(code)}`}): ${stderr.trim() || 'no message'}`);
  }
  return { code: await readFile(file, 'utf8') };
}

const BUNDLE_CHILD = fileURLToPath(new URL('./bundle-child.mjs', import.meta.url));
