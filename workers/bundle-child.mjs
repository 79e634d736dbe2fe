// Bundles the workflow code in a process of its own (workers/bundle.ts): webpack's memory, about
// 100 MiB that the heap would keep, leaves with the process. Plain JavaScript: it runs without
// the TypeScript loader (webpack compiles the workflow sources itself).
// Usage: node bundle-child.mjs <workflows/index.ts> <output file>
import { rename, writeFile } from 'node:fs/promises';
import process from 'node:process';
import { bundleWorkflowCode } from '@temporalio/worker';

const [workflowsPath, file] = process.argv.slice(2);
const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
try {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  const partial = `${file}.${process.pid}.tmp`;
  await writeFile(partial, code);
  await rename(partial, file);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
