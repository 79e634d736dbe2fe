/** The projects index and one project's page: its refs with their latest evals, and recent evals. */
import type { EvalOverview, EvalPage, ProjectPage, ProjectSummary } from '../../queries/index.ts';
import { describeProgress, evalState } from '../dashboard/state.ts';
import { evalHref, projectHref, refLabel, statePill, timeAgo } from './format.ts';
import { html, type SafeHtml } from './html.ts';
import { progressBar, renderEvalList } from './evals.ts';

function latestCells(ev: EvalOverview | null): SafeHtml {
  if (!ev) return html`<td colspan="4" class="muted">no evals yet</td>`;
  return html`<td class="nowrap"><a href="${evalHref(ev.id)}">#${ev.id}</a> <code title="${ev.commit}">${ev.commit.slice(0, 8)}</code></td>
    <td>${statePill(evalState(ev))}</td>
    <td class="progress-cell">${progressBar(ev.progress)}<small>${describeProgress(ev)}</small></td>
    <td class="num">${timeAgo(ev.createdAt)}</td>`;
}

/** All projects with their newest eval. */
export function renderProjectsBody(projects: ProjectSummary[]): SafeHtml {
  if (projects.length === 0) {
    return html`<section class="panel"><h2>Projects</h2><p class="lead">No projects yet: enable one with <code>harmonia-ci projects enable owner/repo</code>, or run <code>harmonia-ci run ./path</code>.</p></section>`;
  }
  const rows = projects.map(
    (p) => html`<tr><td><a href="${projectHref(p.name)}">${p.name}</a>${p.enabled ? null : html` <span class="badge">disabled</span>`}</td>
      <td class="wide-only muted">${p.forge}</td><td class="num">${p.evalCount}</td>${latestCells(p.latest)}</tr>`,
  );
  return html`<section class="panel"><h2>Projects <span class="aside">${projects.length}</span></h2><div class="scroll"><table class="data">
    <thead><tr><th>Project</th><th class="wide-only">Forge</th><th class="num">Evals</th><th>Latest eval</th><th>Status</th><th>Builds</th><th class="num">Created</th></tr></thead>
    <tbody>${rows}</tbody></table></div></section>`;
}

/** One project: repository facts, refs with their latest evals, recent evals. */
export function renderProjectBody(
  project: ProjectPage,
  evals: EvalPage,
  pages: { href: (before: string) => string; newest: string | null },
): SafeHtml {
  const refs = project.refs.map(
    (r) => html`<tr><td>${refLabel(r.ref)}</td><td class="num">${r.evalCount}</td>${latestCells(r.latest)}</tr>`,
  );
  const refsTable =
    refs.length === 0
      ? html`<p class="lead">No evals yet.</p>`
      : html`<div class="scroll"><table class="data">
    <thead><tr><th>Ref</th><th class="num">Evals</th><th>Latest eval</th><th>Status</th><th>Builds</th><th class="num">Created</th></tr></thead>
    <tbody>${refs}</tbody></table></div>`;
  return html`<section class="panel">
  <div class="crumbs"><a href="/ci/projects">projects</a><span>/</span></div>
  <div class="title"><h2>${project.name}</h2>${project.enabled ? statePill('succeeded', 'enabled') : statePill('cancelled', 'disabled')}
    <span class="links"><a href="/api/evals?project=${encodeURIComponent(project.name)}">JSON</a></span></div>
  <dl class="facts">
    <dt>Repository</dt><dd>${project.forge} <code>${project.repository}</code></dd>
    <dt>Clone URL</dt><dd><code>${project.cloneUrl}</code></dd>
    <dt>Default branch</dt><dd><code>${project.defaultBranch}</code></dd>
    <dt>Created</dt><dd>${timeAgo(project.createdAt)}</dd>
  </dl>
</section>
<section class="panel"><h2>Refs <span class="aside">latest eval of each</span></h2>${refsTable}</section>
<section class="panel"><h2>Recent evals</h2>${renderEvalList(evals.evals, { showProject: false })}${pager(evals, pages.href, pages.newest)}</section>`;
}

/** "← Newest" and "Older →" under a list of evals; `newest` is the first page's URL when this is a later page. */
export function pager(page: EvalPage, href: (before: string) => string, newest: string | null): SafeHtml | null {
  if (!page.next && !newest) return null;
  return html`<div class="pager"><span>${newest ? html`<a href="${newest}">← Newest</a>` : null}</span>${
    page.next ? html`<a href="${href(page.next)}" rel="next">Older evals →</a>` : null
  }</div>`;
}
