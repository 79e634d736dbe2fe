/**
 * `harmonia-ci status [eval]`: recent evals with their build counts, or one eval's jobs and
 * builds with statuses, durations and, for dep-failed builds, the failure at the root; under the
 * evals, the recent actions of the audit log (who, what, when, from where).
 */
import type { Command } from 'commander';
import type { AuditRecord, BuildCounts, EvalDetail, EvalSummary, JobSummary, ParkedDelivery } from '../../queries/index.ts';
import { CliError } from '../errors.ts';
import { firstLine, formatAge, formatDuration, formatTable, secondsBetween } from '../format.ts';
import { print, requireEval, SERVER_OPTION, withOperator, type OperatorOptions } from '../operator.ts';

interface StatusOptions extends OperatorOptions {
  limit: string;
  project?: string;
  json: boolean;
}

/** `3/5 built, 1 failed, 1 dep-failed`: an eval's builds in a few words. */
export function describeCounts(counts: BuildCounts): string {
  if (counts.total === 0) return 'nothing to build';
  const parts = [`${counts.succeeded}/${counts.total} built`];
  const failed = counts.failed + counts['timed-out'] + counts['failed-with-output'];
  if (failed > 0) parts.push(`${failed} failed`);
  if (counts['dep-failed'] > 0) parts.push(`${counts['dep-failed']} dep-failed`);
  if (counts.cancelled > 0) parts.push(`${counts.cancelled} cancelled`);
  const active = counts.building + counts.uploading;
  if (active > 0) parts.push(`${active} building`);
  if (counts.pending > 0) parts.push(`${counts.pending} pending`);
  return parts.join(', ');
}

/** A job's state in one word: its build status, `cached`, or `eval-error`. */
export function jobState(job: JobSummary): string {
  if (job.error !== null) return 'eval-error';
  return job.build ?? 'cached';
}

function evalDuration(ev: EvalSummary): string {
  const end = ev.finishedAt ?? (ev.startedAt ? new Date().toISOString() : null);
  return formatDuration(secondsBetween(ev.startedAt ?? ev.createdAt, end));
}

function printEvals(evals: EvalSummary[]): void {
  if (evals.length === 0) {
    print('no evals yet: push to a project, or run `harmonia-ci eval <flake> --project <name>`');
    return;
  }
  const rows = [['EVAL', 'PROJECT', 'REF', 'COMMIT', 'STATUS', 'CREATED', 'TOOK', 'BUILDS']];
  for (const ev of evals) {
    rows.push([ev.id, ev.project, ev.ref, ev.commit.slice(0, 12), ev.status, formatAge(ev.createdAt), evalDuration(ev), describeCounts(ev.counts)]);
  }
  print(formatTable(rows));
}

// Pushes that never became an eval: listed under the evals, so that nobody looks for them in vain.
function printParked(parked: ParkedDelivery[]): void {
  if (parked.length === 0) return;
  print(`\nparked webhook deliveries (${parked.length}): fix the cause, then redeliver them from the forge`);
  const rows = [['  PROJECT', 'REF', 'DELIVERY', 'PARKED', 'LAST ERROR']];
  for (const d of parked) rows.push([`  ${d.project}`, d.ref, `${d.forge} ${d.event} ${d.deliveryId}`, formatAge(d.parkedAt), firstLine(d.error ?? '')]);
  print(formatTable(rows));
}

// Who did what over HTTP; the API shows it to operators (all) and a project's admins (theirs).
function printAudit(entries: AuditRecord[] | undefined): void {
  if (entries === undefined) {
    print('\nrecent actions: not shown to you; an operator, or an admin of the project with --project, sees them (`harmonia-ci login <url>`)');
    return;
  }
  if (entries.length === 0) return;
  print('\nrecent actions');
  const rows = [['  WHEN', 'WHO', 'VIA', 'FROM', 'ACTION', 'ON', 'OUTCOME']];
  for (const e of entries) rows.push([`  ${formatAge(e.at)}`, e.actor, e.via, e.remote, e.action, e.target, firstLine(e.outcome)]);
  print(formatTable(rows));
}

function printEval(ev: EvalDetail): void {
  print(`eval ${ev.id}: ${ev.project} ${ev.ref} @ ${ev.commit.slice(0, 12)} — ${ev.status}`);
  const cached = ev.cachedJobs > 0 ? `, ${ev.cachedJobs} cached` : '';
  const attrErrors = ev.attrErrors > 0 ? `, ${ev.attrErrors} did not evaluate` : '';
  print(`  created ${formatAge(ev.createdAt)}, took ${evalDuration(ev)}; ${ev.jobCount} jobs${cached}${attrErrors}; ${describeCounts(ev.counts)}`);
  if (ev.error) print(`  error: ${ev.error}`);

  if (ev.jobs.length > 0) {
    print('\njobs');
    const rows = [['  ATTR', 'STATE', 'DERIVATION OR ERROR']];
    for (const job of ev.jobs) rows.push([`  ${job.attr}`, jobState(job), job.error !== null ? firstLine(job.error) : (job.drvPath ?? '')]);
    print(formatTable(rows));
  }
  if (ev.builds.length > 0) {
    print('\nbuilds');
    const rows = [['  STATUS', 'NAME', 'NODE', 'ATTEMPTS', 'DURATION', 'DETAIL']];
    for (const build of ev.builds) {
      const detail = build.rootCause
        ? `because ${build.rootCause.name} failed (${build.rootCause.drvPath})`
        : build.error
          ? firstLine(build.error)
          : build.drvPath;
      const seconds = build.seconds ?? (build.startedAt && !build.finishedAt ? secondsBetween(build.startedAt, new Date().toISOString()) : null);
      rows.push([`  ${build.status}`, build.name, build.node ?? '-', String(build.attempts), formatDuration(seconds), detail]);
    }
    print(formatTable(rows));
  }
}

/** Registers `harmonia-ci status`. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .argument('[eval]', 'an eval id: show its jobs and builds')
    .description('recent evals with their build counts, or one eval in detail (jobs, builds, durations, dep-failed root causes)')
    .option('--limit <n>', 'how many recent evals to list', '20')
    .option('--project <name>', 'only evals of this project')
    .option('--json', 'print JSON instead of tables', false)
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((evalId: string | undefined, options: StatusOptions) =>
      withOperator(options, async ({ reads }) => {
        if (evalId !== undefined) {
          const detail = await requireEval(reads, evalId);
          if (options.json) print(JSON.stringify(detail));
          else printEval(detail);
          return;
        }
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError(`--limit expects a number from 1 to 1000, got "${options.limit}"`);
        const evals = await reads.listEvals({ limit, ...(options.project ? { project: options.project } : {}) });
        if (options.json) {
          print(JSON.stringify(evals));
          return;
        }
        printEvals(evals);
        printParked(await reads.listParkedDeliveries(options.project));
        printAudit(await reads.listAudit(options.project));
      }),
    );
}
