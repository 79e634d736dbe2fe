/**
 * `harmonia-ci drain <node> [--undo]`: a builder stops taking builds; the ones it runs finish.
 * The flag travels as the `drain` signal to the node workflow, which records it in
 * `nodes.draining`; the builder polls that workflow and notices within seconds. Same as
 * `temporal workflow signal --workflow-id node/<node> --name drain --input true` (false undoes).
 */
import type { Command } from 'commander';
import { signalDrain } from '../../temporal/drain.ts';
import { CliError } from '../errors.ts';
import { print, SERVER_OPTION, withOperator, type OperatorOptions, type OpsReads } from '../operator.ts';

interface DrainOptions extends OperatorOptions {
  undo: boolean;
  wait: boolean;
}

async function waitUntilIdle(reads: OpsReads, name: string): Promise<void> {
  for (;;) {
    const node = (await reads.listNodes()).find((n) => n.name === name);
    if (!node || node.running === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** Registers `harmonia-ci drain`. */
export function registerDrain(program: Command): void {
  program
    .command('drain')
    .argument('<node>', 'the builder, as `harmonia-ci nodes` lists it')
    .description('stop a builder from taking new builds; running builds finish (--undo resumes)')
    .option('--undo', 'take builds again', false)
    .option('--wait', 'wait until the builds running on the node have finished', false)
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((name: string, options: DrainOptions) =>
      withOperator(options, async ({ reads, temporal, remote }) => {
        const nodes = await reads.listNodes();
        const node = nodes.find((n) => n.name === name);
        if (!node) {
          const known = nodes.map((n) => n.name).join(', ') || 'none registered';
          throw new CliError(`no builder named ${name} (known: ${known})`);
        }
        const draining = !options.undo;
        if (remote) {
          print(await remote.post(`/api/nodes/${encodeURIComponent(name)}/${draining ? 'drain' : 'undrain'}`));
        } else {
          await signalDrain(await temporal(), name, draining);
          print(draining ? `${name}: draining; ${node.running} running build(s) finish, no new ones are taken (\`harmonia-ci drain ${name} --undo\` resumes)` : `${name}: takes builds again`);
        }
        if (!draining) return;
        if (options.wait) {
          await waitUntilIdle(reads, name);
          print(`${name}: no build running`);
        }
      }),
    );
}
