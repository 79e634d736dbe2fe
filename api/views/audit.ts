/** The audit panel of a project page: who did what, when, and (for the project's admins) from where. */
import type { AuditRecord } from '../../queries/index.ts';
import { timeAgo } from './format.ts';
import { html, type SafeHtml } from './html.ts';

/** Nothing when no one has acted on the project yet. */
export function renderAuditPanel(entries: readonly AuditRecord[], options: { showRemote: boolean }): SafeHtml | null {
  if (entries.length === 0) return null;
  const rows = entries.map(
    (e) => html`<tr><td class="num">${timeAgo(e.at)}</td><td>${e.actor}${e.via === 'session' ? null : html` <span class="muted">(${e.via})</span>`}</td>
      <td><code>${e.action}</code></td><td>${e.target}</td><td>${e.outcome}</td>${options.showRemote ? html`<td><code>${e.remote}</code></td>` : null}</tr>`,
  );
  return html`<section class="panel" id="audit"><h2>Actions <span class="aside">audit log, newest first</span></h2><div class="scroll"><table class="data">
  <thead><tr><th class="num">When</th><th>Who</th><th>What</th><th>On</th><th>Outcome</th>${options.showRemote ? html`<th>From</th>` : null}</tr></thead>
  <tbody>${rows}</tbody></table></div></section>`;
}
