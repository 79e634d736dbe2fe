/** Benchmark dispatcher: `npm run bench -- <name> [args]` runs bench/<name>.ts; no name lists them. */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Benchmark {
  run(args: string[]): Promise<void>;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(here)
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts')
  .map((file) => file.slice(0, -'.ts'.length))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name === undefined || name === '--help') {
  process.stdout.write(`usage: npm run bench -- <name> [args]\navailable benchmarks: ${available.join(', ') || '(none)'}\n`);
} else if (!available.includes(name)) {
  process.stderr.write(`unknown benchmark '${name}': choose one of ${available.join(', ')}\n`);
  process.exitCode = 2;
} else {
  const benchmark = (await import(`./${name}.ts`)) as Benchmark;
  await benchmark.run(args);
}
