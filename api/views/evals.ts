/**
 * Evals on the dashboard: the list (landing and project pages) and one eval's page with its
 * progress and jobs. The pieces the live stream replaces (header, summary, job rows, jobs
 * table) are rendered by the same functions the page uses, so a live update looks the same as a
 * reload.
 */
import { createHash } from 'node:crypto';
import { type EvalJob, type EvalOverview, type JobState, jobState } from '../../queries/index.ts';
import { failingConstituents } from '../../queries/jobs.ts';
import { describeProgress, evalFinished, evalState } from '../dashboard/state.ts';
import type { EvalProgress } from '../../workflows/types.ts';
import {
  buildHref,
  elapsed,
  evalHref,
  firstLine,
  jobHref,
  projectHref,
  refLabel,
  statePill,
  timeAgo,
  workflowHref,
  type TemporalUi,
} from './format.ts';
import { html, type SafeHtml } from './html.ts';

/** Jobs shown before the table asks to be expanded: failures come first, so they are never cut. */
export const JOBS_SHOWN = 1000;

/** Progress segments, in the order they are drawn. */
function segments(p: EvalProgress): Array<[state: string, count: number, label: string]> {
  return [
    ['succeeded', p.succeeded, 'built'],
    ['cached', p.cached, 'cached'],
    ['failed', p.failed + p.timedOut, 'failed'],
    ['dep-failed', p.depFailed, 'dep-failed'],
    ['cancelled', p.cancelled, 'cancelled'],
    ['building', p.building, 'building'],
    ['pending', p.pending, 'pending'],
  ];
}

/** A bar of coloured segments, one per state, proportional to their counts. */
export function progressBar(p: EvalProgress, big = false): SafeHtml {
  const parts = segments(p).filter(([state, count]) => count > 0 && state !== 'pending');
  const title = segments(p)
    .filter(([, count]) => count > 0)
    .map(([, count, label]) => `${count} ${label}`)
    .join(', ');
  const width = (count: number): string => `width:${((100 * count) / Math.max(1, p.total)).toFixed(3)}%`;
  return html`<div class="bar${big ? ' big' : ''}" role="img" aria-label="${title || 'nothing to build'}" title="${title || 'nothing to build'}">${parts.map(
    ([state, count]) => html`<span class="s-${state}" style="${width(count)}"></span>`,
  )}</div>`;
}

/** The list of evals: one row each with state, progress and age. */
export function renderEvalList(evals: EvalOverview[], { showProject = true }: { showProject?: boolean } = {}): SafeHtml {
  if (evals.length === 0) {
    return html`<p class="lead">No evals yet. Push to an enabled project, or run <code>harmonia-ci run ./path</code>.</p>`;
  }
  const rows = evals.map((ev) => {
    const took = ev.finishedAt || ev.startedAt ? elapsed(ev.startedAt ?? ev.createdAt, ev.finishedAt) : html`<span class="muted">—</span>`;
    return html`<tr>
  <td class="nowrap c-id"><a href="${evalHref(ev.id)}">#${ev.id}</a></td>
  ${showProject ? html`<td class="c-project"><a href="${projectHref(ev.project)}">${ev.project}</a></td>` : null}
  <td class="c-ref">${refLabel(ev.ref)}</td>
  <td class="c-commit"><code title="${ev.commit}">${ev.commit.slice(0, 8)}</code></td>
  <td class="c-state">${statePill(evalState(ev))}</td>
  <td class="progress-cell c-progress">${progressBar(ev.progress)}<small>${describeProgress(ev)}</small></td>
  <td class="num c-age">${timeAgo(ev.createdAt)}</td>
  <td class="num wide-only">${took}</td>
</tr>`;
  });
  return html`<div class="scroll"><table class="data evals">
<thead><tr><th>Eval</th>${showProject ? html`<th>Project</th>` : null}<th>Ref</th><th>Commit</th><th>Status</th><th>Builds</th><th class="num">Created</th><th class="num wide-only">Took</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}

const RANK: Record<JobState, number> = {
  'eval-error': 0,
  failed: 0,
  'timed-out': 0,
  'failed-with-output': 0,
  'dep-failed': 1,
  building: 2,
  uploading: 2,
  pending: 3,
  cancelled: 4,
  succeeded: 5,
  cached: 6,
};

/** Failures first, then what is running, then the rest; by attribute within each group. */
export function sortJobs(jobs: EvalJob[]): EvalJob[] {
  return [...jobs].sort((a, b) => RANK[jobState(a)] - RANK[jobState(b)] || (a.attr < b.attr ? -1 : a.attr > b.attr ? 1 : 0));
}

/** The element id of a job's row: attribute names may hold any character. */
export function jobRowId(attr: string): string {
  return `job-${createHash('sha256').update(attr).digest('hex').slice(0, 16)}`;
}

function jobDetail(job: EvalJob, state: JobState): SafeHtml | null {
  if (job.evalError !== null) return html`<span class="err" title="${job.evalError}">${firstLine(job.evalError)}</span>`;
  const failing = failingConstituents(job);
  if (failing.length > 0) return html`<span class="err">constituents failed: ${failing.join(', ')}</span>`;
  if (job.constituents && state === 'pending') return html`waiting for its constituents`;
  const build = job.build;
  if (!build || !job.planned) return null;
  if (state === 'dep-failed' && build.rootCause) {
    return html`because <a href="${buildHref(build.rootCause.drvPath)}" class="mono">${build.rootCause.name}</a> failed`;
  }
  if (build.error) return html`<span class="err" title="${build.error}">${firstLine(build.error)}</span>`;
  if (build.attempts > 1) return html`attempt ${build.attempts}`;
  return null;
}

/** One row of the jobs table; with the eval's id, the attribute also links to its job page. */
export function renderJobRow(job: EvalJob, evalId?: string): SafeHtml {
  const state = jobState(job);
  const build = job.drvPath ? html`<a href="${buildHref(job.drvPath)}">${job.attr}</a>` : html`${job.attr}`;
  const name = evalId ? html`${build}<a href="${jobHref(evalId, job.attr)}" class="job-link muted" title="${job.meta?.description ?? 'the job'}">job</a>` : build;
  const pill = state === 'cached' ? html`${statePill('succeeded')} <span class="badge cache" title="outputs were already in a cache">cached</span>` : statePill(state);
  const planned = job.planned ? job.build : null;
  const duration = planned?.startedAt ? elapsed(planned.startedAt, planned.finishedAt) : html`<span class="muted">—</span>`;
  return html`<tr id="${jobRowId(job.attr)}" data-state="${state}" data-rank="${RANK[state]}">
  <td class="attr mono">${name}</td>
  <td class="nowrap">${pill}</td>
  <td class="num">${duration}</td>
  <td class="mono wide-only">${planned?.node ?? ''}</td>
  <td class="why">${jobDetail(job, state)}</td>
</tr>`;
}

/** The body of the jobs table, capped at `JOBS_SHOWN` rows unless `all`. */
export function renderJobsBody(jobs: EvalJob[], all: boolean, evalId?: string): SafeHtml {
  const sorted = sortJobs(jobs);
  const shown = all ? sorted : sorted.slice(0, JOBS_SHOWN);
  if (shown.length === 0) return html`<tbody id="jobs"><tr><td colspan="5" class="muted">No jobs.</td></tr></tbody>`;
  return html`<tbody id="jobs">${shown.map((job) => renderJobRow(job, evalId))}</tbody>`;
}

export interface EvalPageOptions {
  temporalUi?: TemporalUi | undefined;
  /** Show every job, not only the first `JOBS_SHOWN`. */
  all: boolean;
  /** The live stream's URL while the eval can still change. */
  liveUrl?: string | undefined;
}

/** The header panel: what was evaluated, where, and how the evaluation went. */
export function renderEvalHead(ev: EvalOverview, options: EvalPageOptions): SafeHtml {
  const state = evalState(ev);
  const temporal = ev.workflowId ?? `eval/${ev.id}`;
  const temporalHref = workflowHref(options.temporalUi, temporal);
  const commit = ev.commitUrl ? html`<a href="${ev.commitUrl}" rel="noopener"><code>${ev.commit}</code></a>` : html`<code>${ev.commit}</code>`;
  const took = ev.startedAt ? elapsed(ev.startedAt, ev.finishedAt) : null;
  return html`<section class="panel" id="eval-head">
  <div class="crumbs"><a href="${projectHref(ev.project)}">${ev.project}</a><span>/</span>${refLabel(ev.ref)}</div>
  <div class="title"><h2>Eval #${ev.id}</h2>${statePill(state)}${evalFinished(ev) ? null : html`<span class="live" id="live">live</span>`}
    <span class="links">${temporalHref ? html`<a href="${temporalHref}" rel="noopener">Temporal workflow</a>` : null}<a href="/api/evals/${ev.id}">JSON</a></span></div>
  <dl class="facts two">
    <dt>Project</dt><dd><a href="${projectHref(ev.project)}">${ev.project}</a></dd>
    <dt>Ref</dt><dd><code>${ev.ref}</code>${ev.pullRequest ? html` (pull request #${ev.pullRequest})` : null}</dd>
    <dt>Commit</dt><dd>${commit}</dd>
    <dt>Event</dt><dd>${ev.event}</dd>
    <dt>Evaluation</dt><dd>${statePill(ev.status)}${ev.copiedFrom ? html` same tree as <a href="${evalHref(ev.copiedFrom)}">eval #${ev.copiedFrom}</a>: its results are reused` : null}</dd>
    <dt>Created</dt><dd>${timeAgo(ev.createdAt)}</dd>
    <dt>Started</dt><dd>${timeAgo(ev.startedAt)}</dd>
    <dt>Finished</dt><dd>${timeAgo(ev.finishedAt)}${took ? html` <span class="muted">(evaluation took ${took})</span>` : null}</dd>
  </dl>
  ${ev.error ? html`<pre class="error">${ev.error}</pre>` : null}
</section>`;
}

/** The progress panel: bar, the commit status line and counts per state. */
export function renderEvalSummary(ev: EvalOverview): SafeHtml {
  const p = ev.progress;
  const legend = segments(p)
    .filter(([, count]) => count > 0)
    .map(([state, count, label]) => html`<span><i class="s-${state}"></i><b>${count}</b> ${label}</span>`);
  const attrErrors = ev.attrErrors > 0 ? html`<span><i class="s-failed"></i><b>${ev.attrErrors}</b> did not evaluate</span>` : null;
  const phase = ev.status === 'queued' || ev.status === 'running';
  return html`<section class="panel" id="summary">
  <h2>Builds <span class="aside">${describeProgress(ev)}</span></h2>
  ${phase ? html`<p class="lead">${ev.status === 'queued' ? 'Waiting for an evaluator.' : 'Evaluating the jobset…'}</p>` : progressBar(p, true)}
  <div class="legend">${legend}${attrErrors}<span><b>${p.total}</b> total</span></div>
</section>`;
}

/** The aggregate jobs as a group: each with its constituents and how they stand. */
export function renderAggregates(jobs: EvalJob[], evalId: string): SafeHtml | null {
  const aggregates = jobs.filter((job) => job.constituents !== null);
  if (aggregates.length === 0) return null;
  const item = (job: EvalJob): SafeHtml => {
    const name = html`<a href="${jobHref(evalId, job.attr)}">${job.attr}</a>`;
    const constituents = (job.constituents ?? []).map(
      (c) => html`<li>${statePill(c.state)} <a href="${c.attr === null ? buildHref(c.drvPath) : jobHref(evalId, c.attr)}" class="mono">${c.attr ?? c.drvPath}</a></li>`,
    );
    return html`<li class="aggregate" data-state="${jobState(job)}"><span class="mono">${name}</span> ${statePill(jobState(job))}
  <ul class="constituents">${constituents}</ul></li>`;
  };
  return html`<section class="panel" id="aggregates">
  <h2>Aggregates <span class="aside">${aggregates.length} ${aggregates.length === 1 ? 'job stands' : 'jobs stand'} for their constituents</span></h2>
  <ul class="aggregates">${aggregates.map(item)}</ul>
</section>`;
}

/** The whole eval page body. */
export function renderEvalBody(ev: EvalOverview, jobs: EvalJob[], options: EvalPageOptions): SafeHtml {
  const hidden = options.all ? 0 : Math.max(0, jobs.length - JOBS_SHOWN);
  const more = hidden > 0 ? html`<p class="lead">${hidden} more jobs not shown: <a href="?all=1">show all ${jobs.length}</a>.</p>` : null;
  const live = options.liveUrl ? html` data-live="${options.liveUrl}"` : null;
  return html`<div id="eval"${live}>
${renderEvalHead(ev, options)}
${renderEvalSummary(ev)}
${renderAggregates(jobs, ev.id)}
<section class="panel">
  <h2>Jobs <span class="aside">${jobs.length} ${jobs.length === 1 ? 'job' : 'jobs'}, failures first</span></h2>
  <div class="scroll"><table class="data jobs">
    <thead><tr><th>Attribute</th><th>Status</th><th class="num">Duration</th><th class="wide-only">Builder</th><th>Details</th></tr></thead>
    ${renderJobsBody(jobs, options.all, ev.id)}
  </table></div>
  ${more}
</section>
</div>`;
}

