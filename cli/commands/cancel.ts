/**
 * `harmonia-ci cancel <eval-id|build>`: sends the `cancel` signal. An eval stops evaluating or
 * waiting and releases its builds; a build is withdrawn if it has not started (one that is
 * running finishes: its output is useful in the cache). The same as
 * `temporal workflow signal --workflow-id eval/<id> --name cancel` (or `build/<hash>`).
 */
import type { Command } from 'commander';
import { buildWorkflowId, cancelSignal, evalWorkflowId } from '../../workflows/definitions.ts';
import { CliError } from '../errors.ts';
import { buildArgument, print, SERVER_OPTION, signalWorkflow, withOperator, type OperatorOptions } from '../operator.ts';

/** Registers `harmonia-ci cancel`. */
export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .argument('<target>', 'an eval id, or a build: build/<hash>, a .drv path or its hash part')
    .description('cancel an eval (and the builds only it wanted), or a build that has not started')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((target: string, options: OperatorOptions) =>
      withOperator(options, async ({ reads, temporal, remote }) => {
        if (remote) {
          const path = /^\d+$/.test(target) ? `/api/evals/${target}/cancel` : `/api/builds/${buildArgument(target)}/cancel`;
          print(await remote.post(path));
          return;
        }
        if (/^\d+$/.test(target)) {
          const ev = await reads.readEval(target);
          if (!ev) throw new CliError(`no eval ${target} (read from ${reads.source}); \`harmonia-ci status\` lists recent evals`);
          const active = ev.counts.pending + ev.counts.building + ev.counts.uploading;
          if (['succeeded', 'failed', 'cancelled', 'skipped'].includes(ev.status) && active === 0) {
            throw new CliError(`eval ${target} has already ended (${ev.status}); nothing to cancel`);
          }
          await signalWorkflow(await temporal(), evalWorkflowId(target), cancelSignal, [], 'it has already ended');
          print(`asked eval ${target} to cancel; builds no other eval wants are withdrawn, running ones finish`);
          return;
        }
        const workflowId = buildWorkflowId(buildArgument(target));
        await signalWorkflow(await temporal(), workflowId, cancelSignal, [], 'the build has ended or was never started');
        print(`asked ${workflowId} to cancel; it is withdrawn unless it is already building (then it finishes)`);
      }),
    );
}
