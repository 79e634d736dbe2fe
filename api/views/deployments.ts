/** The deployments panel of a project page: environment, path, outcome, who approved, the agent's log. */
import type { DeploymentRow } from '../../queries/deployments.ts';
import { evalHref, firstLine, statePill, storePath, timeAgo } from './format.ts';
import { html, type SafeHtml } from './html.ts';

// Deployment states shown with the pill colours of the build states that mean the same.
const PILL: Record<string, string> = {
  pending: 'queued',
  'awaiting-approval': 'queued',
  sent: 'building',
  running: 'building',
  succeeded: 'succeeded',
  failed: 'failed',
  'rolled-back': 'failed',
  refused: 'failed',
  'timed-out': 'timed-out',
  superseded: 'cancelled',
};

/** An Approve button on a deployment awaiting approval, for the project's admins (`csrf` given). */
function approveButton(d: DeploymentRow, csrf: string | undefined): SafeHtml | null {
  if (!csrf || d.status !== 'awaiting-approval') return null;
  return html` <form class="action" method="post" action="/api/deployments/${d.id}/approve"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">Approve</button></form>`;
}

/** Nothing when the project has never been deployed; `csrf` is given to the project's admins. */
export function renderDeploymentsPanel(deployments: readonly DeploymentRow[], csrf?: string): SafeHtml | null {
  if (deployments.length === 0) return null;
  const rows = deployments.map(
    (d) => html`<tr id="deployment-${d.id}"><td>${d.environment}</td><td>${statePill(PILL[d.status] ?? 'queued', d.status)}${approveButton(d, csrf)}</td><td>${storePath(d.storePath)}</td>
      <td>${d.evalId ? html`<a href="${evalHref(d.evalId)}">#${d.evalId}</a>` : null} <code>${d.attr}</code></td>
      <td>${d.approvedBy ?? ''}</td><td>${d.reason ? firstLine(d.reason) : ''}${d.log ? html`<details><summary>log</summary><pre>${d.log}</pre></details>` : null}</td>
      <td class="num">${timeAgo(d.createdAt)}</td></tr>`,
  );
  return html`<section class="panel"><h2>Deployments <span class="aside">admins approve here, or with <code>temporal workflow signal --workflow-id deploy/&lt;project&gt;/&lt;environment&gt; --name approve</code></span></h2>
<div class="scroll"><table class="data">
  <thead><tr><th>Environment</th><th>Status</th><th>Path</th><th>Job</th><th>Approved by</th><th>Outcome</th><th class="num">Created</th></tr></thead>
  <tbody>${rows}</tbody></table></div></section>`;
}
