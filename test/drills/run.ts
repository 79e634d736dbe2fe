/**
 * Fault drills: `npm run drills [-- --layers 10 --width 30] [--only <words>]`. Each drill runs a
 * salted layered DAG (one job per derivation of the top layer, one derivation failing on purpose
 * with dependents) through the stack against the same real services the tests use, injects one
 * fault, and compares with a fault-free run of the same shape: final job statuses equal, each
 * derivation built successfully at most once, no narinfo without its NAR, no eval left open, and
 * the time to finish. It prints one row per drill, and exits 1 if any lost work.
 *
 * The drills live by kind: local.ts (one `harmonia-ci run`), fleet.ts (each role in its own
 * process, services that go away), forge.ts (webhooks and the forge's API).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { applyTestEnvironmentDefaults, startTestServices } from '../helpers/services.ts';
import { row, type Drill, type DrillContext } from './common.ts';
import { forgeDown, mergeQueuePushes, webhookBurst } from './forge.ts';
import { baseline, overlappingPushes, runKilled } from './local.ts';

const DRILLS: Array<[string, Drill]> = [
  ['whole run SIGKILLed at 1/3, run again', runKilled],
  ['second push 1 s later, 90 % overlap', overlappingPushes],
  ['forge API down for 60 s while the DAG builds', forgeDown],
  ['two merge-queue pushes 1 s apart, 90 % overlap', mergeQueuePushes],
  ['500 webhook deliveries in 10 s, duplicates and bad signatures', webhookBurst],
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { layers: { type: 'string', default: '10' }, width: { type: 'string', default: '30' }, only: { type: 'string' } },
  });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  const chosen = DRILLS.filter(([name]) => !values.only || name.includes(values.only));
  if (chosen.length === 0) throw new Error(`--only ${JSON.stringify(values.only)} matches none of: ${DRILLS.map(([name]) => name).join('; ')}`);
  applyTestEnvironmentDefaults();
  const root = await mkdtemp(join(tmpdir(), 'harmonia-drills-'));
  const say = (message: string): void => void process.stderr.write(`drills: ${message}\n`);
  const log = { info: (m: string) => say(`services: ${m}`), warn: (m: string) => say(`services: ${m}`), debug: () => undefined };
  const services = await startTestServices({ dir: join(root, 'services'), log });
  Object.assign(process.env, services.env);
  const context: DrillContext = { root, shape, services: services.env, say };
  const rows: string[] = [];
  let failures = 0;
  try {
    say(`${shape.layers} layers × ${shape.width} = ${shape.layers * shape.width} derivations each`);
    const reference = await baseline(context);
    rows.push(row('no fault (baseline)', reference, reference));
    for (const [name, drill] of chosen) {
      say(`${name} …`);
      let line: string;
      try {
        line = row(name, await drill(context), reference);
      } catch (error) {
        line = `| ${name} | – | – | – | – | – | FAILED: ${(error as Error).message.replaceAll('|', '/').split('\n')[0]} |`;
      }
      if (!line.includes('nothing lost')) failures++;
      say(line);
      rows.push(line);
    }
  } finally {
    await services.stop();
    await rm(root, { recursive: true, force: true });
  }
  process.stdout.write(`\n| drill | jobs as without the fault | built twice | narinfo without NAR | evals left open | time (s) | verdict |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`);
  if (failures > 0) process.exitCode = 1;
}

await main();
