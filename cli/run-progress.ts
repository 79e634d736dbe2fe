/** What `harmonia-ci run` shows while an eval runs, and the summary it ends with. */
import { createHash, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { evalWorkflowId } from '../workflows/definitions.ts';
import type { BuildStatus, EvalStatus, PushEvent } from '../workflows/types.ts';
import { findEvalOfCommit, listEvalBuildsWithTails, readEvalJobs, readEvalStatus, type BuildWithTail } from '../queries/index.ts';
import { failingConstituents, jobState, type JobState } from '../queries/jobs.ts';
import { ensureLocalProject } from '../forges/projects.ts';
import { signalPush } from '../temporal/push.ts';
import { CliError } from './errors.ts';

export type JobStatus = 'succeeded' | 'failed' | 'dep-failed' | 'timed-out' | 'cancelled' | 'failed-with-output';

export interface RunSummary {
  eval: { id: string; status: EvalStatus; error?: string };
  jobs: RunJob[];
}

/** One job of `run --json`. */
export interface RunJob {
  attr: string;
  drvPath: string | null;
  status: JobStatus;
  cached: boolean;
  outputs: Record<string, string>;
  error?: string;
  /** For an aggregate job: each constituent (its job, or a derivation that is no job) and its state. */
  constituents?: Array<{ attr: string | null; drvPath: string; status: JobState }>;
}

/** The ref local runs are recorded under unless told otherwise. */
export const LOCAL_REF = 'refs/heads/local';

/**
 * Pushes a local checkout to its project's ref workflow, as a webhook would; returns the eval,
 * and whether it existed already (the same sha pushed before: the ref workflow ignores the push).
 * Without a sha, every call is a new commit.
 */
export async function startLocalEval(options: {
  client: Client;
  pool: Pool;
  path: string;
  attrs?: string[];
  ref?: string;
  /** Evaluations of the same tree hash are skipped; none given means always evaluate. */
  treeHash?: string;
  sha?: string;
}): Promise<{ evalId: string; projectName: string; sha: string; existed: boolean }> {
  const ref = options.ref ?? LOCAL_REF;
  const projectName = await ensureLocalProject(options.pool, options.path, options.attrs);
  const sha = options.sha ?? createHash('sha1').update(randomUUID()).digest('hex');
  const push: PushEvent = { sha, source: { kind: 'path', url: options.path }, event: 'manual' };
  if (options.treeHash) push.treeHash = options.treeHash;
  const existing = await findEvalOfCommit(options.pool, projectName, sha);
  await signalPush(options.client, projectName, ref, push);
  return { evalId: existing ?? (await waitForEval(options.pool, projectName, sha)), projectName, sha, existed: existing !== undefined };
}

/** Waits for the eval workflow to exist and end (its result or its failure); a skipped eval has none. */
export async function waitForEvalWorkflow(client: Client, pool: Pool, evalId: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.workflow.getHandle(evalWorkflowId(evalId)).result();
      return;
    } catch (error) {
      if ((error as Error).name !== 'WorkflowNotFoundError') return;
      if ((await readEvalStatus(pool, evalId))?.status === 'skipped') return;
      if (Date.now() > deadline) throw new Error(`eval ${evalId} never started`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The eval the ref workflow creates for our push. */
export async function waitForEval(pool: Pool, projectName: string, sha: string, timeoutMs = 60_000): Promise<string> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  while (Date.now() < deadline) {
    const evalId = await findEvalOfCommit(pool, projectName, sha);
    if (evalId) return evalId;
    // The ref workflow creates it within tens of milliseconds when all is well: look often at first.
    await sleep(Date.now() - started < 2000 ? 15 : 100);
  }
  throw new CliError(`no eval was created within ${timeoutMs / 1000} s; is the coordinator worker running? (see the Temporal Web UI)`);
}

const MARK: Partial<Record<BuildStatus, string>> = {
  building: '▶',
  succeeded: '✔',
  failed: '✘',
  'timed-out': '⏱',
  'failed-with-output': '✘',
  'dep-failed': '⊘',
  cancelled: '◌',
};

/** Prints build events as they happen until the eval workflow ends; returns the summary. */
export async function watchEval(options: {
  pool: Pool;
  client: Client;
  evalId: string;
  say(line: string): void;
  tty: boolean;
  /** Stops watching: rejects with the signal's reason once no call to Temporal is left in flight. */
  signal?: AbortSignal;
}): Promise<RunSummary> {
  const { pool, client, evalId, say } = options;
  const signal = options.signal ?? new AbortController().signal;
  const handle = client.workflow.getHandle(evalWorkflowId(evalId));
  let closed = false;
  const waitClosed = (async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await client.withAbortSignal(signal, () => handle.result());
        return;
      } catch (error) {
        if ((error as Error).name !== 'WorkflowNotFoundError') return;
        if ((await readEvalStatus(pool, evalId))?.status === 'skipped') return;
        if (Date.now() > deadline) {
          throw new CliError(`the workflow ${evalWorkflowId(evalId)} did not start within a minute; look at the ref workflow in the Temporal Web UI`);
        }
        await sleep(200);
      }
    }
  })().then(() => {
    closed = true;
  });

  const seen = new Map<string, BuildStatus>();
  const names = new Map<string, string>();
  let lastLine = '';
  const aborted = new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  for (;;) {
    if (signal.aborted) {
      // The caller closes the connection next: a call still retrying on it would fail uncaught.
      await waitClosed.catch(() => undefined);
      throw signal.reason;
    }
    const isLast = closed;
    const rows = await listEvalBuildsWithTails(pool, evalId);
    for (const row of rows) {
      names.set(row.drvPath, row.name);
      if (seen.get(row.drvPath) === row.status || row.status === 'pending' || row.status === 'uploading') continue;
      seen.set(row.drvPath, row.status);
      say(`  ${MARK[row.status] ?? '·'} ${row.status.padEnd(10)} ${row.name}${describe(row, names)}`);
      if (row.status === 'failed' || row.status === 'timed-out' || row.status === 'failed-with-output') {
        for (const line of (row.tail ?? '').trimEnd().split('\n').slice(-5)) if (line) say(`      | ${line}`);
      }
    }
    const line = progressLine(rows);
    if (line !== lastLine && rows.length > 0) say(`  ${line}`);
    lastLine = line;
    if (isLast) break;
    await Promise.race([waitClosed, sleep(500), aborted]);
  }
  const summary = await readRunSummary(pool, evalId);
  printSummary(summary, say);
  return summary;
}

function describe(row: BuildWithTail, names: Map<string, string>): string {
  const root = row.rootCause?.drvPath;
  if (row.status === 'dep-failed' && root) return ` (because ${names.get(root) ?? root} failed)`;
  if (row.status === 'succeeded' && row.seconds !== null) return ` (${row.seconds.toFixed(1)} s)`;
  if ((row.status === 'failed' || row.status === 'timed-out' || row.status === 'failed-with-output') && row.error) return `: ${row.error.split('\n')[0]}`;
  return '';
}

function progressLine(rows: BuildWithTail[]): string {
  const count = (s: BuildStatus) => rows.filter((r) => r.status === s).length;
  const done = rows.length - count('pending') - count('building') - count('uploading');
  const parts = [`${done}/${rows.length} builds done`];
  if (count('building') > 0) parts.push(`${count('building')} building`);
  const failed = count('failed') + count('timed-out') + count('failed-with-output');
  if (failed > 0) parts.push(`${failed} failed`);
  if (count('dep-failed') > 0) parts.push(`${count('dep-failed')} dep-failed`);
  return `[${parts.join(' · ')}]`;
}

/** Every job of an eval with its final status, from PostgreSQL. */
export async function readRunSummary(pool: Pool, evalId: string): Promise<RunSummary> {
  const ev = (await readEvalStatus(pool, evalId))!;
  const summary: RunSummary = { eval: { id: evalId, status: ev.status }, jobs: [] };
  if (ev.error) summary.eval.error = ev.error;
  for (const row of await readEvalJobs(pool, evalId)) {
    const state = jobState(row);
    const status: JobStatus = state === 'eval-error' ? 'failed' : state === 'cached' ? 'succeeded' : toJobStatus(state);
    const job: RunJob = { attr: row.attr, drvPath: row.drvPath, status, cached: !row.evalError && !row.planned, outputs: row.outputs };
    const failing = failingConstituents(row);
    if (row.evalError) job.error = row.evalError;
    else if (failing.length > 0) job.error = `constituents failed: ${failing.join(', ')}`;
    if (row.constituents) job.constituents = row.constituents.map((c) => ({ attr: c.attr, drvPath: c.drvPath, status: c.state }));
    summary.jobs.push(job);
  }
  return summary;
}

function printSummary(summary: RunSummary, say: (line: string) => void): void {
  const ev = summary.eval;
  say('');
  if (ev.status === 'failed') say(`evaluation failed: ${ev.error ?? 'unknown error'}`);
  for (const job of summary.jobs) {
    say(`  ${MARK[job.status] ?? '·'} ${job.attr}  ${job.status}${job.cached ? ' (cached)' : ''}${job.error ? `: ${job.error.split('\n')[0]}` : ''}`);
  }
  const ok = summary.jobs.filter((j) => j.status === 'succeeded').length;
  say(`\n${ok}/${summary.jobs.length} jobs succeeded`);
}

function toJobStatus(status: BuildStatus | null): JobStatus {
  if (status === 'succeeded' || status === 'failed' || status === 'dep-failed' || status === 'timed-out' || status === 'failed-with-output') return status;
  return 'cancelled';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
