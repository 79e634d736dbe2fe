/** The `/ci/` landing page: recent evals across projects and a live components panel. */
import type { EvalPage } from '../../queries/index.ts';
import { renderEvalList } from './evals.ts';
import { html, raw } from './html.ts';
import { renderPage } from './layout.ts';
import { pager } from './projects.ts';
import { relativeTimeScript } from './scripts.ts';

// Reads /healthz (which answers 503 with the same body when something is down)
// and fills the table with textContent only, so no server text becomes markup.
const componentsScript = raw(`
(() => {
  const table = document.getElementById('components');
  const overall = document.getElementById('overall');
  const checked = document.getElementById('checked');
  const pill = (status) => {
    const span = document.createElement('span');
    span.className = 'pill ' + status.replace(/\\s+/g, '-');
    span.textContent = status;
    return span;
  };
  async function refresh() {
    let report;
    try {
      const response = await fetch('/healthz', { headers: { accept: 'application/json' } });
      report = await response.json();
    } catch (error) {
      overall.replaceChildren(pill('unreachable'));
      checked.textContent = 'the API did not answer: ' + error;
      return;
    }
    overall.replaceChildren(pill(report.status));
    const rows = Object.entries(report.components).map(([name, component]) => {
      const row = document.createElement('tr');
      const label = name.replace(/[A-Z]/g, (c) => ' ' + c.toLowerCase());
      const cells = [label, null, component.message + (component.required ? '' : ' (optional)')];
      cells.forEach((text, i) => {
        const cell = document.createElement('td');
        cell.className = ['name', 'state', 'detail'][i];
        if (text === null) cell.append(pill(component.status)); else cell.textContent = text;
        row.append(cell);
      });
      return row;
    });
    table.replaceChildren(...rows);
    checked.textContent = 'checked ' + new Date(report.checkedAt).toLocaleTimeString();
  }
  refresh();
  setInterval(refresh, 10000);
})();
`);

export interface LandingOptions {
  temporalUiUrl?: string | undefined;
  /** The page of recent evals to show. */
  evals: EvalPage;
  /** The first page's URL when this is a later page. */
  newest: string | null;
}

/** Renders the landing page: recent evals across projects, and the components panel (from /healthz). */
export function renderLandingPage({ temporalUiUrl, evals, newest }: LandingOptions): string {
  const temporal = temporalUiUrl
    ? html`Workflows, their histories and search attributes are browsable in the
        <a href="${temporalUiUrl}" rel="noopener">Temporal Web UI</a>.`
    : html`No Temporal Web UI URL is configured.`;
  const body = html`<section class="panel">
  <h2>Recent evals <span class="aside">all projects, newest first</span></h2>
  ${renderEvalList(evals.evals)}
  ${pager(evals, (before) => `/ci/?before=${encodeURIComponent(before)}`, newest)}
</section>
<section class="panel compact">
  <h2>Components <span id="overall"><span class="pill">checking</span></span></h2>
  <table><tbody id="components"><tr><td class="detail">Loading <a href="/healthz">/healthz</a>…</td></tr></tbody></table>
  <p class="lead"><small id="checked"></small> <small>${temporal}</small></p>
  <noscript><p class="lead">Scripts are off: read <a href="/healthz">/healthz</a> directly.</p></noscript>
</section>`;
  return renderPage({ title: 'harmonia-ci', temporalUiUrl, body, script: html`${componentsScript}${relativeTimeScript}` });
}
