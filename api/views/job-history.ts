/** The history of one attribute across a project's evals: newest first, and since when it fails. */
import type { JobHistory } from '../../queries/index.ts';
import { buildHref, evalHref, formatDuration, projectHref, refLabel, statePill, timeAgo } from './format.ts';
import { html, type SafeHtml } from './html.ts';

const short = (commit: string): string => commit.slice(0, 12);

/** The job history page body. */
export function renderJobHistoryBody(history: JobHistory): SafeHtml {
  const latest = history.entries[0]!;
  const since = history.failingSince;
  const failing = since
    ? html`<p class="err" id="failing-since">failing since <a href="${evalHref(since.evalId)}">eval #${since.evalId}</a> / commit <span class="mono" title="${since.commit}">${short(since.commit)}</span>${
        since === history.entries.at(-1) ? html` <span class="muted">(or earlier: older evals are not shown)</span>` : null
      }</p>`
    : null;
  const rows = history.entries.map(
    (e) => html`<tr data-state="${e.state}">
  <td class="nowrap"><a href="${evalHref(e.evalId)}">#${e.evalId}</a></td>
  <td class="mono" title="${e.commit}">${short(e.commit)}</td>
  <td>${refLabel(e.ref)}</td>
  <td class="nowrap">${statePill(e.state)}</td>
  <td class="num">${formatDuration(e.seconds)}</td>
  <td>${e.drvPath ? html`<a href="${buildHref(e.drvPath)}">build</a>` : html`<span class="muted">—</span>`}</td>
  <td class="nowrap">${timeAgo(e.evalCreatedAt)}</td>
</tr>`,
  );
  return html`<div id="job-history">
<section class="panel">
  <div class="crumbs"><a href="${projectHref(history.project)}">${history.project}</a><span>/</span><span>jobs</span></div>
  <div class="title"><h2 class="mono">${history.attr}</h2>${statePill(latest.state)}</div>
  ${failing}
  <p class="lead">The last ${history.entries.length} evals with this attribute, newest first.</p>
</section>
<section class="panel"><div class="scroll"><table class="data">
  <thead><tr><th>Eval</th><th>Commit</th><th>Ref</th><th>Status</th><th class="num">Duration</th><th>Build</th><th>When</th></tr></thead>
  <tbody id="history">${rows}</tbody></table></div></section>
</div>`;
}
