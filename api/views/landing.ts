/** The `/ci/` landing page: recent evals across projects and a live components panel. */
import type { EvalPage, ParkedDelivery } from '../../queries/index.ts';
import { renderEvalList } from './evals.ts';
import { firstLine, projectHref, refLabel, timeAgo } from './format.ts';
import { html, raw, type SafeHtml } from './html.ts';
import { renderPage, type AccountView } from './layout.ts';
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
  /** Webhook deliveries the dispatcher gave up on: shown above everything while there are any. */
  parked: ParkedDelivery[];
  account?: AccountView | undefined;
}

/** The parked webhook deliveries: pushes that never became an eval, with the reason. */
function renderParked(parked: ParkedDelivery[]): SafeHtml | null {
  if (parked.length === 0) return null;
  const rows = parked.map(
    (d) => html`<tr>
  <td class="c-project"><a href="${projectHref(d.project)}">${d.project}</a></td>
  <td class="c-ref">${refLabel(d.ref)}</td>
  <td><code title="${d.deliveryId}">${d.forge} ${d.event}</code></td>
  <td class="detail" title="${d.error ?? ''}">${firstLine(d.error ?? 'no error recorded')}</td>
  <td class="num">${d.failures}</td>
  <td class="num">${timeAgo(d.parkedAt)}</td>
</tr>`,
  );
  return html`<section class="panel" id="parked-deliveries">
  <h2>Parked webhook deliveries <span class="aside">failed repeatedly; later pushes to their refs went ahead</span></h2>
  <div class="scroll"><table class="data">
<thead><tr><th>Project</th><th>Ref</th><th>Delivery</th><th>Last error</th><th class="num">Failures</th><th class="num">Parked</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>
  <p class="lead"><small>Fix the cause, then redeliver the delivery from the forge's webhook settings: the redelivery replaces the parked one.
  The same list as JSON: <a href="/api/deliveries?status=parked">/api/deliveries?status=parked</a>.</small></p>
</section>`;
}

/** Renders the landing page: recent evals across projects, and the components panel (from /healthz). */
export function renderLandingPage({ temporalUiUrl, evals, newest, parked, account }: LandingOptions): string {
  const temporal = temporalUiUrl
    ? html`Workflows, their histories and search attributes are browsable in the
        <a href="${temporalUiUrl}" rel="noopener">Temporal Web UI</a>.`
    : html`No Temporal Web UI URL is configured.`;
  const body = html`${renderParked(parked)}<section class="panel">
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
  return renderPage({ title: 'harmonia-ci', temporalUiUrl, body, script: html`${componentsScript}${relativeTimeScript}`, account });
}
