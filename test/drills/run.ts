/**
 * Fault drills: `npm run drills [-- --layers 10 --width 30] [--only <words>[|<words>…]] [--keep]`. Each drill runs a
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
import { row, type Drill, type DrillContext, type Outcome } from './common.ts';
import { buildersKilled, coordinatorKilled, fleetBaseline, fleetOwnStores, postgresRestarted, s3Stopped, signerKilled, temporalKilled } from './fleet.ts';
import { forgeDown, mergeQueuePushes, webhookBurst } from './forge.ts';
import { baseline, overlappingPushes, runKilled } from './local.ts';

/** Each drill, and the fault-free run it is compared with (`harmonia-ci run`'s unless it says). */
const DRILLS: Array<[string, Drill, reference?: Drill]> = [
  ['whole run SIGKILLed at 1/3, run again', runKilled],
  ['second push 1 s later, 90 % overlap', overlappingPushes],
  ['forge API down for 60 s while the DAG builds', forgeDown],
  ['two merge-queue pushes 1 s apart, 90 % overlap', mergeQueuePushes],
  ['500 webhook deliveries in 10 s, duplicates and bad signatures', webhookBurst],
  ['fleet: no fault (roles in separate processes)', fleetBaseline],
  ['fleet: evaluator and builders with stores of their own', fleetOwnStores, fleetBaseline],
  ['fleet: a builder SIGKILLed mid-build, 3 times', buildersKilled, fleetBaseline],
  ['fleet: coordinator SIGKILLed, restarted', (context) => coordinatorKilled(context), fleetBaseline],
  ['fleet: Temporal SIGKILLed, restarted on its SQLite file', (context) => temporalKilled(context), fleetBaseline],
  ['fleet: PostgreSQL restarted', (context) => postgresRestarted(context), fleetBaseline],
  ['fleet: S3 stopped for 60 s during uploads', (context) => s3Stopped(context), fleetBaseline],
  ['fleet: signer SIGKILLed mid-publish, 3 times', signerKilled, fleetBaseline],
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { layers: { type: 'string', default: '10' }, width: { type: 'string', default: '30' }, only: { type: 'string' }, keep: { type: 'boolean', default: false } },
  });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  const wanted = values.only?.split('|') ?? [];
  const chosen = DRILLS.filter(([name]) => wanted.length === 0 || wanted.some((part) => name.includes(part)));
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
    // References run once, before the drills that compare with them.
    const references = new Map<Drill, Outcome>();
    const referenceOf = async (drill: Drill): Promise<Outcome> => {
      if (!references.has(drill)) references.set(drill, await drill(context));
      return references.get(drill)!;
    };
    const reference = await referenceOf(baseline);
    rows.push(row('no fault (baseline)', reference, reference));
    for (const [name, drill, against] of chosen) {
      say(`${name} …`);
      let line: string;
      try {
        const result = drill === fleetBaseline ? await referenceOf(fleetBaseline) : await drill(context);
        line = row(name, result, against ? await referenceOf(against) : reference);
      } catch (error) {
        line = `| ${name} | – | – | – | – | – | FAILED: ${(error as Error).message.replaceAll('|', '/').split('\n')[0]} |`;
      }
      if (!line.includes('nothing lost')) failures++;
      say(line);
      rows.push(line);
    }
  } finally {
    await services.stop();
    if (values.keep) say(`kept ${root} (each drill's directory holds its roles' logs)`);
    else await rm(root, { recursive: true, force: true });
  }
  process.stdout.write(`\n| drill | jobs as without the fault | built twice | narinfo without NAR | evals left open | time (s) | verdict |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`);
  if (failures > 0) process.exitCode = 1;
}

await main();
