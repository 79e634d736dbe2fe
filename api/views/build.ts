/**
 * One build's page: the derivation and its build, outputs, the builds its failure took down,
 * the live log tail and the evals that include it. The header and the log are what the live
 * stream replaces.
 */
import type { BuildPage } from '../../queries/index.ts';
import type { BuildStatus } from '../../workflows/types.ts';
import {
  buildHref,
  elapsed,
  evalHref,
  formatBytes,
  projectHref,
  refLabel,
  statePill,
  storePath,
  stripAnsi,
  timeAgo,
  workflowHref,
  type TemporalUi,
} from './format.ts';
import { html, type SafeHtml } from './html.ts';

export interface BuildPageOptions {
  temporalUi?: TemporalUi | undefined;
  /** `/log/<drv>` when the full log is in the binary cache. */
  fullLogHref?: string | undefined;
  /** The live stream's URL while the build can still change. */
  liveUrl?: string | undefined;
}

/** The hash part of a derivation path (the build's key in URLs). */
export const drvHashPart = (drvPath: string): string => drvPath.slice(drvPath.lastIndexOf('/') + 1, drvPath.lastIndexOf('/') + 33);

function buildFacts(page: BuildPage): SafeHtml {
  const build = page.build;
  if (!build) {
    return html`<dt>Status</dt><dd class="full">${statePill('cached')} <span class="muted">never built here: its outputs were in a cache when an eval needed it</span></dd>`;
  }
  const root = build.rootCause
    ? html`<dt>Root cause</dt><dd class="full"><a href="${buildHref(build.rootCause.drvPath)}" class="mono">${build.rootCause.name}</a> failed
        <span class="muted">(${storePath(build.rootCause.drvPath)})</span></dd>`
    : null;
  const took = build.startedAt ? elapsed(build.startedAt, build.finishedAt) : null;
  return html`<dt>Status</dt><dd>${statePill(build.status)}${build.exitCode !== null ? html` <span class="muted">exit code ${build.exitCode}</span>` : null}</dd>
    ${root}
    <dt>Attempts</dt><dd>${build.attempts}${build.priority > 0 ? html` <span class="badge">priority ${build.priority}</span>` : null}</dd>
    <dt>Builder</dt><dd class="mono">${build.node ?? '—'}</dd>
    <dt>Queued</dt><dd>${timeAgo(build.createdAt)}</dd>
    <dt>Started</dt><dd>${timeAgo(build.startedAt)}</dd>
    <dt>Upload</dt><dd>${timeAgo(build.uploadStartedAt)}</dd>
    <dt>Finished</dt><dd>${timeAgo(build.finishedAt)}${took ? html` <span class="muted">(took ${took})</span>` : null}</dd>
    <dt>Output size</dt><dd>${formatBytes(build.outputSize)}</dd>`;
}

/** The header panel with the build's state; replaced in place by the live stream. */
export function renderBuildHead(page: BuildPage, options: BuildPageOptions): SafeHtml {
  const build = page.build;
  const temporalHref = build?.workflowId ? workflowHref(options.temporalUi, build.workflowId) : undefined;
  const live = options.liveUrl ? html`<span class="live" id="live">live</span>` : null;
  return html`<section class="panel" id="build-head">
  <div class="crumbs"><span>build</span>${build ? html`<span class="mono">#${build.id}</span>` : null}</div>
  <div class="title"><h2 class="mono">${page.name}</h2>${statePill(build?.status ?? 'cached')}${live}
    <span class="links">${temporalHref ? html`<a href="${temporalHref}" rel="noopener">Temporal workflow</a>` : null}${
      options.fullLogHref ? html`<a href="${options.fullLogHref}">Full log</a>` : null
    }<a href="/api/builds/${drvHashPart(page.drvPath)}">JSON</a></span></div>
  <dl class="facts two">
    <dt>Derivation</dt><dd class="full">${storePath(page.drvPath)}</dd>
    <dt>System</dt><dd><code>${page.system}</code>${page.features.map((f) => html` <span class="badge">${f}</span>`)}</dd>
    ${buildFacts(page)}
  </dl>
  ${build?.error ? html`<pre class="error">${build.error}</pre>` : null}
</section>`;
}

function renderOutputs(page: BuildPage): SafeHtml {
  const base = page.drvPath.slice(page.drvPath.lastIndexOf('/') + 1);
  // The NAR as the cache stores it; there once the output was uploaded (its NAR hash is known).
  const nar = (name: string): string => `/api/builds/${encodeURIComponent(base.slice(0, 32))}/outputs/${encodeURIComponent(name)}.nar`;
  const rows = page.outputs.map(
    (o) => html`<tr><td class="mono">${o.name}</td><td>${o.path ? storePath(o.path) : html`<span class="muted">not known until built</span>`}</td>
      <td class="num">${formatBytes(o.narSize)}</td><td>${o.path && o.narHash ? html`<a href="${nar(o.name)}" download class="nar-link">NAR</a>` : null}</td><td class="mono wide-only muted">${o.narHash ?? ''}</td></tr>`,
  );
  return html`<section class="panel"><h2>Outputs</h2><div class="scroll"><table class="data">
    <thead><tr><th>Name</th><th>Path</th><th class="num">NAR size</th><th>Download</th><th class="wide-only">NAR hash</th></tr></thead>
    <tbody>${rows}</tbody></table></div></section>`;
}

/** The files the outputs offer (`nix-support/hydra-build-products`), each a download link. */
function renderProducts(page: BuildPage): SafeHtml | null {
  if (page.products.length === 0) return null;
  const rows = page.products.map(
    (p) => html`<tr><td><a href="${p.url}" download>${p.name}</a>${p.defaultPath ? html` <span class="muted">(${p.defaultPath})</span>` : null}</td>
      <td class="mono">${p.type} ${p.subtype}</td><td class="num">${p.fileSize === undefined ? '' : formatBytes(p.fileSize)}</td>
      <td class="mono wide-only muted">${p.sha256 ?? ''}</td></tr>`,
  );
  return html`<section class="panel" id="products"><h2>Build products</h2><div class="scroll"><table class="data">
    <thead><tr><th>File</th><th>Type</th><th class="num">Size</th><th class="wide-only">SHA-256</th></tr></thead>
    <tbody>${rows}</tbody></table></div></section>`;
}

function renderDependents(page: BuildPage): SafeHtml | null {
  if (page.dependentCount === 0) return null;
  const more = page.dependentCount - page.dependents.length;
  return html`<section class="panel"><h2>Dep-failed because of this build <span class="aside">${page.dependentCount} ${page.dependentCount === 1 ? 'build' : 'builds'}</span></h2>
    <p class="lead">${page.dependents.map((d, i) => html`${i > 0 ? ', ' : ''}<a href="${buildHref(d.drvPath)}" class="mono">${d.name}</a>`)}${more > 0 ? html` and ${more} more` : null}</p>
  </section>`;
}

/** The log panel's text: the tail without terminal escapes, or what explains its absence. */
export function logText(log: BuildPage['log'], status: BuildStatus | null): string {
  if (log && log.tail !== '') return stripAnsi(log.tail);
  if (status === null) return 'No log: this derivation was never built here.';
  if (status === 'pending') return 'Waiting for a builder…';
  if (status === 'dep-failed') return 'Not built: an input failed.';
  return 'No log output was recorded.';
}

/** ` · updated 3 s ago` after the log panel's title, or nothing before any log exists. */
export function logUpdated(updatedAt: string | null): SafeHtml | null {
  return updatedAt ? html` · updated ${timeAgo(updatedAt)}` : null;
}

function renderLog(page: BuildPage, options: BuildPageOptions): SafeHtml {
  const updated = html`<span id="log-updated">${logUpdated(page.log?.updatedAt ?? null)}</span>`;
  const full = options.fullLogHref ? html` · <a href="${options.fullLogHref}">full log</a>` : null;
  return html`<section class="panel"><h2>Log <span class="aside">last 64 KB${updated}${full}</span></h2>
    <pre class="log" id="log">${logText(page.log, page.build?.status ?? null)}</pre></section>`;
}

function renderEvals(page: BuildPage): SafeHtml {
  if (page.evals.length === 0) return html`<section class="panel"><h2>Evals</h2><p class="lead">No eval includes this derivation.</p></section>`;
  const rows = page.evals.map(
    (ev) => html`<tr><td class="nowrap"><a href="${evalHref(ev.id)}">#${ev.id}</a></td><td><a href="${projectHref(ev.project)}">${ev.project}</a></td>
      <td>${refLabel(ev.ref)}</td><td><code title="${ev.commit}">${ev.commit.slice(0, 8)}</code></td>
      <td class="mono">${ev.attr ?? html`<span class="muted">(an input)</span>`}</td><td class="num">${timeAgo(ev.createdAt)}</td></tr>`,
  );
  return html`<section class="panel"><h2>Evals that include it <span class="aside">newest first</span></h2><div class="scroll"><table class="data">
    <thead><tr><th>Eval</th><th>Project</th><th>Ref</th><th>Commit</th><th>Attribute</th><th class="num">Created</th></tr></thead>
    <tbody>${rows}</tbody></table></div></section>`;
}

/** The whole build page body. */
export function renderBuildBody(page: BuildPage, options: BuildPageOptions): SafeHtml {
  const live = options.liveUrl ? html` data-live="${options.liveUrl}"` : null;
  return html`<div id="build"${live}>
${renderBuildHead(page, options)}
${renderDependents(page)}
${renderProducts(page)}
${renderLog(page, options)}
${renderOutputs(page)}
${renderEvals(page)}
</div>`;
}
