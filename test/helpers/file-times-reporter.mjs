/**
 * A test reporter that prints, at the end of the run, the slowest test files with their wall time,
 * so the suite's duration stays visible: `test/run.ts` adds it next to the spec reporter. Plain
 * JavaScript because Node loads reporters before any loader hook.
 */
import process from 'node:process';

const SHOWN = 15;

/** @param {AsyncIterable<{ type: string, data: { nesting: number, file?: string, name: string, details?: { duration_ms?: number } } }>} source */
export default async function* fileTimes(source) {
  /** @type {Map<string, number>} */
  const files = new Map();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    if (event.data.nesting !== 0) continue;
    const file = (event.data.file ?? event.data.name).replace(`${process.cwd()}/`, '');
    files.set(file, (files.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
  }
  const rows = [...files].sort((a, b) => b[1] - a[1]).slice(0, SHOWN);
  if (rows.length === 0) return;
  yield '\nslowest test files (wall time of their top-level tests):\n';
  for (const [file, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${file}\n`;
}
