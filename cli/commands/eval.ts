/**
 * `harmonia-ci eval <flake-url> --project <name> --ref <ref>`: what a webhook push does, from the
 * command line. It signals the ref workflow with a push (signal-with-start), waits for the eval
 * it creates and prints its id. A local path is evaluated as it is on disk (a fresh eval every
 * time); a git URL at the commit the ref points to (`git ls-remote`), or at --rev. A local path
 * needs no forge: the coordinator creates an unknown --project for it on first use, so this works
 * against `harmonia-ci dev` (reads through its API) as `run` does.
 * `harmonia-ci re-evaluate <project> <ref>` evaluates the ref's latest commit again
 * (`temporal workflow signal --workflow-id 'ref/<project>/<ref>' --name re-evaluate`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { execa } from 'execa';
import { signalPush } from '../../temporal/push.ts';
import { reEvaluateSignal, refWorkflowId } from '../../workflows/definitions.ts';
import type { PushEvent } from '../../workflows/types.ts';
import { CliError } from '../errors.ts';
import { fullRef, print, SERVER_OPTION, signalWorkflow, withOperator, type OperatorOptions, type OpsReads } from '../operator.ts';

interface EvalOptions extends OperatorOptions {
  project: string;
  ref: string;
  rev?: string;
  wait: string;
}

/** The push for a local path or a git URL. */
async function pushFor(target: string, ref: string, rev: string | undefined): Promise<PushEvent> {
  const path = resolve(target);
  if (existsSync(path)) {
    // A working directory has no commit of its own: a unique one makes every `eval` evaluate.
    const sha = rev ?? createHash('sha1').update(randomUUID()).digest('hex');
    return { sha, source: { kind: 'path', url: path }, event: 'manual' };
  }
  if (!/^(git\+)?(https?|ssh|git|file):\/\//.test(target) && !/^[^/:]+@[^/:]+:/.test(target)) {
    throw new CliError(`"${target}" is neither a local path nor a git URL (https://, ssh://, git://, file://, user@host:path)`);
  }
  const sha = rev ?? (await resolveRemoteRef(target.replace(/^git\+/, ''), ref));
  if (!/^[0-9a-f]{40}$/.test(sha)) throw new CliError(`--rev expects a full 40-character commit hash, got "${sha}"`);
  return { sha, source: { kind: 'git', url: target, rev: sha }, event: 'manual' };
}

async function resolveRemoteRef(url: string, ref: string): Promise<string> {
  const result = await execa('git', ['ls-remote', '--', url, ref], { reject: false, env: { GIT_TERMINAL_PROMPT: '0' } });
  if (result.exitCode !== 0) throw new CliError(`git ls-remote ${url} failed: ${result.stderr.trim() || `exit code ${result.exitCode}`}`);
  const line = result.stdout.split('\n').find((l) => l.endsWith(`\t${ref}`));
  if (!line) throw new CliError(`${url} has no ${ref}; push it first, or give the commit with --rev`);
  return line.split('\t')[0]!;
}

/** The eval the ref workflow creates for the push, or a CliError naming why there is none. */
async function waitForEval(reads: OpsReads, client: Client, project: string, ref: string, sha: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [found] = await reads.listEvals({ limit: 1, project, ref, commit: sha });
    if (found) return found.id;
    const description = await client.workflow.getHandle(refWorkflowId(project, ref)).describe();
    if (description.status.name !== 'RUNNING') {
      const failure = await client.workflow
        .getHandle(refWorkflowId(project, ref))
        .result()
        .then(
          () => 'it ended',
          (error: Error) => rootMessage(error),
        );
      throw new CliError(`the ref workflow ${refWorkflowId(project, ref)} stopped without creating an eval: ${failure}`);
    }
    if (Date.now() > deadline) {
      throw new CliError(
        `no eval was created within ${timeoutMs / 1000} s; is a coordinator worker running (\`harmonia-ci worker coordinator\`)? ` +
          `The ref workflow ${refWorkflowId(project, ref)} in the Temporal Web UI shows where it waits`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The innermost cause's message: a workflow failure wraps the activity failure that wraps the reason. */
function rootMessage(error: Error): string {
  let inner = error;
  while (inner.cause instanceof Error) inner = inner.cause;
  return inner.message;
}

/** Registers `harmonia-ci eval` and `harmonia-ci re-evaluate`. */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .argument('<flake-url>', 'a local flake directory or .nix file, or a git URL')
    .description("evaluate a project's jobset as a push would, and print the eval id")
    .requiredOption('--project <name>', 'the project (its name in `harmonia-ci status`); for a local path, created on first use')
    .option('--ref <ref>', 'the branch or full ref the eval belongs to', 'refs/heads/main')
    .option('--rev <sha>', 'git URL: the commit to evaluate (default: where --ref points)')
    .option('--wait <seconds>', 'how long to wait for the eval to be created', '60')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .action((target: string, options: EvalOptions) =>
      withOperator(options, async ({ reads, temporal }) => {
        const ref = fullRef(options.ref);
        const push = await pushFor(target, ref, options.rev);
        const client = await temporal();
        await signalPush(client, options.project, ref, push);
        const evalId = await waitForEval(reads, client, options.project, ref, push.sha, Number(options.wait) * 1000);
        process.stderr.write(`harmonia-ci: eval ${evalId} of ${options.project} ${ref} @ ${push.sha.slice(0, 12)}; \`harmonia-ci status ${evalId}\` follows it\n`);
        print(evalId);
      }),
    );

  program
    .command('re-evaluate')
    .argument('<project>', 'the project')
    .argument('<ref>', 'a branch name or full ref')
    .description("evaluate the ref's latest commit again (a fresh eval of the same commit)")
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((project: string, refArgument: string, options: OperatorOptions) =>
      withOperator(options, async ({ reads, temporal, remote }) => {
        const ref = fullRef(refArgument);
        if (remote) {
          // The API re-evaluates the ref of an eval: its latest one names it.
          const [latest] = await reads.listEvals({ project, ref, limit: 1 });
          if (!latest) throw new CliError(`${project} has no eval of ${ref} to repeat (read from ${reads.source}); \`harmonia-ci status\` lists recent evals`);
          print(await remote.post(`/api/evals/${latest.id}/re-evaluate`));
          return;
        }
        await signalWorkflow(await temporal(), refWorkflowId(project, ref), reEvaluateSignal, [], `${project} has no ref ${ref} with an eval to repeat`);
        print(`asked ${refWorkflowId(project, ref)} to evaluate its latest commit again`);
      }),
    );
}
