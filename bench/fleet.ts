/**
 * `npm run bench -- fleet [--layers 10 --width 100]`: a salted DAG (1,000 derivations by default,
 * one failing on purpose with its dependents) through a fleet whose evaluator and two builders
 * each have a store of their own (mount namespaces with an empty /nix: everything a build needs
 * comes through the S3 cache), against the same fleet on one shared store, in the same run on the
 * same services. Prints both times and the ratio: the cost of builders on their own machines
 * (publishing the `.drv` closure, substituting inputs) on this machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { comparable, type DrillContext, type Outcome } from '../test/drills/common.ts';
import { fleetBaseline, fleetOwnStores } from '../test/drills/fleet.ts';
import { applyTestEnvironmentDefaults, startTestServices } from '../test/helpers/services.ts';

const say = (line: string): void => void process.stdout.write(`${line}\n`);

function describe(result: Outcome, derivations: number): string {
  const lost = result.builtTwice.length > 0 || result.narinfosWithoutNar > 0 || result.openEvals > 0;
  return `${result.seconds.toFixed(1)} s  ${(derivations / result.seconds).toFixed(0)} derivations/s, ${result.narinfos} narinfos${lost ? '  LOST WORK' : ''}`;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { layers: { type: 'string', default: '10' }, width: { type: 'string', default: '100' } } });
  const shape = { layers: Number(values.layers), width: Number(values.width) };
  const total = shape.layers * shape.width;
  applyTestEnvironmentDefaults();
  const root = await mkdtemp(join(tmpdir(), 'harmonia-bench-fleet-'));
  const services = await startTestServices({ dir: join(root, 'services'), log: { info: () => undefined, warn: (m) => say(`  services: ${m}`), debug: () => undefined } });
  Object.assign(process.env, services.env);
  const context: DrillContext = { root, shape, services: services.env, say: (m) => say(`  ${m}`) };
  try {
    say(`fleet: ${shape.layers} layers × ${shape.width} = ${total} derivations; every role in its own process, two builders (2 jobs each), cache in S3`);
    const shared = await fleetBaseline(context);
    say(`one shared store (baseline)          ${describe(shared, total)}`);
    const own = await fleetOwnStores(context);
    say(`stores of their own                  ${describe(own, total)}`);
    say(`  ratio: ${(own.seconds / shared.seconds).toFixed(2)}× the shared store; job statuses ${comparable(own.statuses) === comparable(shared.statuses) ? 'equal' : 'DIFFER'}`);
    if (comparable(own.statuses) !== comparable(shared.statuses)) process.exitCode = 1;
  } finally {
    await services.stop();
    await rm(root, { recursive: true, force: true });
  }
}
