/** The nodes page: each builder's systems, features, running builds against its slots, last heartbeat, drain state. */
import type { NodeSummary } from '../../queries/index.ts';
import { statePill, timeAgo } from './format.ts';
import { html, type SafeHtml } from './html.ts';

/** A builder not heard from for this long is shown as away. */
const AWAY_SECONDS = 120;

function state(node: NodeSummary): SafeHtml {
  if (node.secondsSinceSeen > AWAY_SECONDS) return statePill('cancelled', 'away');
  if (node.draining) return statePill('queued', 'draining');
  return statePill('succeeded', node.running > 0 ? 'building' : 'idle');
}

/** The table body, swapped in place by the page's event stream; `csrf` given, operators get drain buttons. */
export function renderNodesBody(nodes: readonly NodeSummary[], csrf: string | undefined): SafeHtml {
  if (nodes.length === 0) return html`<tbody id="nodes"><tr><td colspan="8" class="muted">No builder has registered yet: start one with <code>harmonia-ci worker builder</code>.</td></tr></tbody>`;
  const rows = nodes.map((n) => {
    const path = n.draining ? 'undrain' : 'drain';
    const button = csrf
      ? html`<form class="action" method="post" action="/api/nodes/${encodeURIComponent(n.name)}/${path}"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">${n.draining ? 'Undrain' : 'Drain'}</button></form>`
      : null;
    const use = n.maxJobs > 0 ? Math.round((100 * n.running) / n.maxJobs) : 0;
    return html`<tr id="node-${n.name}"><td><code>${n.name}</code></td><td>${state(n)}</td><td>${n.systems.join(', ')}</td>
      <td>${n.features.length > 0 ? n.features.join(', ') : html`<span class="muted">—</span>`}</td>
      <td class="num">${String(n.running)}/${String(n.maxJobs)} <small class="muted">${String(use)}%</small></td>
      <td class="num">${timeAgo(n.lastSeenAt)}</td><td class="muted">${n.version ?? ''}</td><td>${button}</td></tr>`;
  });
  return html`<tbody id="nodes">${rows}</tbody>`;
}

/** The page: the table follows `liveUrl` while it is open. */
export function renderNodesPage(nodes: readonly NodeSummary[], options: { csrf: string | undefined; liveUrl: string }): SafeHtml {
  return html`<section class="panel" data-live="${options.liveUrl}"><h2>Nodes <span class="aside">${String(nodes.length)} builder(s)${options.csrf ? null : html`; operators (auth.admins) drain and undrain them here`}</span></h2>
<div class="scroll"><table class="data">
  <thead><tr><th>Builder</th><th>State</th><th>Systems</th><th>Features</th><th class="num">Running</th><th class="num">Last heartbeat</th><th>Version</th><th></th></tr></thead>
  ${renderNodesBody(nodes, options.csrf)}</table></div></section>`;
}
