/**
 * A test reporter that prints, at the end of the run, the slowest test files with their wall time,
 * so the suite's duration stays visible: `test/run.ts` adds it next to the spec reporter. With
 * HARMONIA_TEST_TIMES_FILE set it also writes every file's time there as JSON, the form of
 * `test/file-times.json`, which the runner uses to start the longest files first. Plain JavaScript
 * because Node loads reporters before any loader hook.
 */
import { writeFile } from 'node:fs/promises';
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
  const sorted = [...files].sort((a, b) => b[1] - a[1]);
  if (sorted.length === 0) return;
  const out = process.env.HARMONIA_TEST_TIMES_FILE;
  if (out) {
    const seconds = Object.fromEntries(sorted.map(([file, ms]) => [file, Math.round(ms / 100) / 10]));
    await writeFile(out, `${JSON.stringify(seconds, null, 2)}\n`);
  }
  yield '\nslowest test files (wall time of their top-level tests):\n';
  for (const [file, ms] of sorted.slice(0, SHOWN)) yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${file}\n`;
}
