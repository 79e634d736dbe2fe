/** One job's page: an attribute of an eval with its state, what its `meta` says, its build and, for an aggregate, its constituents. */
import type { EvalJob, EvalOverview } from '../../queries/index.ts';
import { failingConstituents, jobState } from '../../queries/jobs.ts';
import { buildHref, evalHref, firstLine, jobHref, projectHref, projectJobHref, statePill } from './format.ts';
import { html, type SafeHtml } from './html.ts';

const seconds = (value: number): string => (value >= 60 && value % 60 === 0 ? `${value / 60} min` : `${value} s`);

/** The job page body. */
export function renderJobBody(ev: EvalOverview, job: EvalJob): SafeHtml {
  const state = jobState(job);
  const meta = job.meta ?? {};
  const failing = failingConstituents(job);
  const constituents = job.constituents
    ? html`<section class="panel" id="constituents"><h2>Constituents <span class="aside">this aggregate stands for them</span></h2>
  <ul class="constituents">${job.constituents.map(
    (c) => html`<li>${statePill(c.state)} <a href="${c.attr === null ? buildHref(c.drvPath) : jobHref(ev.id, c.attr)}" class="mono">${c.attr ?? c.drvPath}</a></li>`,
  )}</ul></section>`
    : null;
  return html`<div id="job">
<section class="panel" id="job-head">
  <div class="crumbs"><a href="${projectHref(ev.project)}">${ev.project}</a><span>/</span><a href="${evalHref(ev.id)}">eval #${ev.id}</a></div>
  <div class="title"><h2 class="mono">${job.attr}</h2>${statePill(state)}</div>
  ${meta.description ? html`<p class="lead">${meta.description}</p>` : null}
  <p><a href="${projectJobHref(ev.project, job.attr)}" class="history-link">History across evals</a></p>
  <dl class="facts two">
    <dt>Build</dt><dd>${job.drvPath ? html`<a href="${buildHref(job.drvPath)}" class="mono">${job.drvPath}</a>` : html`<span class="muted">none: the attribute did not evaluate</span>`}</dd>
    <dt>Maintainers</dt><dd>${meta.maintainers?.join(', ') ?? html`<span class="muted">—</span>`}</dd>
    <dt>License</dt><dd>${meta.license?.join(', ') ?? html`<span class="muted">—</span>`}</dd>
    <dt>Timeout</dt><dd>${meta.timeout === undefined ? html`<span class="muted">the server's limit</span>` : html`${seconds(meta.timeout)} <span class="muted">(meta.timeout, within the server's limit)</span>`}</dd>
    <dt>Max silence</dt><dd>${meta.maxSilent === undefined ? html`<span class="muted">the server's limit</span>` : html`${seconds(meta.maxSilent)} <span class="muted">(meta.maxSilent, within the server's limit)</span>`}</dd>
    ${Object.keys(job.outputs).length > 0 ? html`<dt>Outputs</dt><dd class="mono">${Object.entries(job.outputs).map(([name, path]) => html`${name}: ${path}<br>`)}</dd>` : null}
  </dl>
  ${job.evalError ? html`<pre class="error">${job.evalError}</pre>` : null}
  ${failing.length > 0 ? html`<p class="err">constituents failed: ${failing.join(', ')}</p>` : null}
  ${job.build?.error && job.planned ? html`<p class="err" title="${job.build.error}">${firstLine(job.build.error)}</p>` : null}
</section>
${constituents}
</div>`;
}
