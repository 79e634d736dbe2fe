/**
 * `harmonia-ci rebuild <build>` and `harmonia-ci rebuild-failed <eval>`: put failed builds (and
 * the builds that failed because of them) back to pending at high priority. Both are signals to
 * the ref workflow, which acts on its latest eval:
 *
 *   temporal workflow signal --workflow-id 'ref/<project>/<ref>' --name rebuild --input '"<drv path>"'
 *   temporal workflow signal --workflow-id 'ref/<project>/<ref>' --name rebuild-failed
 */
import type { Command } from 'commander';
import type { BuildDetail } from '../../queries/index.ts';
import { rebuildFailedSignal, rebuildSignal, refWorkflowId } from '../../workflows/definitions.ts';
import { CliError } from '../errors.ts';
import { buildArgument, print, requireBuild, requireEval, SERVER_OPTION, signalWorkflow, withOperator, type OperatorOptions, type OpsReads } from '../operator.ts';

const REBUILDABLE = ['failed', 'timed-out', 'cancelled'];

/** The build to rebuild: a dep-failed build is rebuilt by rebuilding the failure at its root. */
async function rebuildTarget(reads: OpsReads, build: BuildDetail): Promise<BuildDetail> {
  if (build.status === 'dep-failed' && build.rootCause) {
    print(`${build.name} is dep-failed because ${build.rootCause.name} failed: rebuilding ${build.rootCause.name}, which retries both`);
    return requireBuild(reads, build.rootCause.drvPath);
  }
  return build;
}

const notRunning = (ref: string): string =>
  `the ref workflow is not running; push to ${ref} again (or \`harmonia-ci eval\`) to start it`;

/** Registers `harmonia-ci rebuild` and `harmonia-ci rebuild-failed`. */
export function registerRebuild(program: Command): void {
  program
    .command('rebuild')
    .argument('<build>', 'a .drv store path, its hash part, or build/<hash>')
    .description('build a failed derivation again (and what failed because of it), in the latest eval of a ref that includes it')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((build: string, options: OperatorOptions) =>
      withOperator(options, async ({ reads, temporal, remote }) => {
        if (remote) {
          print(await remote.post(`/api/builds/${buildArgument(build)}/rebuild`));
          return;
        }
        const target = await rebuildTarget(reads, await requireBuild(reads, build));
        if (!REBUILDABLE.includes(target.status)) {
          throw new CliError(`${target.name} is ${target.status}; only failed, timed-out or cancelled builds are rebuilt`);
        }
        if (!target.latest) {
          throw new CliError(
            `no ref's latest eval includes ${target.drvPath}; newer evals replaced the ones that did (\`harmonia-ci re-evaluate <project> <ref>\` evaluates a ref again)`,
          );
        }
        const { project, ref, evalId } = target.latest;
        await signalWorkflow(await temporal(), refWorkflowId(project, ref), rebuildSignal, [target.drvPath], notRunning(ref));
        print(`rebuilding ${target.name} in eval ${evalId} (${project} ${ref}); follow with \`harmonia-ci status ${evalId}\``);
      }),
    );

  program
    .command('rebuild-failed')
    .argument('<eval>', 'an eval id: the latest of its ref')
    .description('build every failed, timed-out and dep-failed build of an eval again')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((evalId: string, options: OperatorOptions) =>
      withOperator(options, async ({ reads, temporal, remote }) => {
        const ev = await requireEval(reads, evalId);
        if (remote) {
          print(await remote.post(`/api/evals/${ev.id}/rebuild-failed`));
          return;
        }
        const [latest] = (await reads.listEvals({ limit: 20, project: ev.project, ref: ev.ref })).filter((e) => e.status !== 'skipped');
        if (latest && latest.id !== ev.id) {
          throw new CliError(
            `eval ${ev.id} is not the latest of ${ev.project} ${ev.ref} (eval ${latest.id} is), and rebuild-failed acts on a ref's latest eval; ` +
              `run \`harmonia-ci rebuild-failed ${latest.id}\`, or \`harmonia-ci rebuild <drv>\` for single builds`,
          );
        }
        const { counts } = ev;
        const failed = counts.failed + counts['timed-out'] + counts.cancelled + counts['dep-failed'];
        if (failed === 0) {
          print(`eval ${ev.id} has no failed builds; nothing to rebuild`);
          return;
        }
        await signalWorkflow(await temporal(), refWorkflowId(ev.project, ev.ref), rebuildFailedSignal, [], notRunning(ev.ref));
        print(`rebuilding ${failed} failed build(s) of eval ${ev.id}; follow with \`harmonia-ci status ${ev.id}\``);
      }),
    );
}
