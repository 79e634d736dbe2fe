/** `/ci/settings/tokens`: a person's API tokens, a form for a new one, and the new one's secret, shown once. */
import type { TokenListing } from '../../access/tokens.ts';
import { timeAgo } from './format.ts';
import { html, type SafeHtml } from './html.ts';

/** Expiries offered by the form: `value` is what it posts. */
export const TOKEN_EXPIRIES: ReadonlyArray<[string, string]> = [
  ['7d', '7 days'],
  ['30d', '30 days'],
  ['90d', '90 days'],
  ['365d', 'a year'],
  ['never', 'never'],
];

const SCOPES: ReadonlyArray<[string, string]> = [
  ['read', 'read: see what you may see (private projects)'],
  ['write', 'write: also cancel, rebuild, re-evaluate'],
  ['admin', 'admin: also change settings of projects you administer'],
];

export interface TokensPageOptions {
  csrf: string;
  /** A token just created: its secret is on this page and nowhere else. */
  created?: { id: string; token: string; expiresAt: string | null } | undefined;
  publicUrl: string;
}

/** The tokens page body. */
export function renderTokensBody(tokens: readonly TokenListing[], options: TokensPageOptions): SafeHtml {
  const token = html`<input type="hidden" name="_csrf" value="${options.csrf}">`;
  const created = options.created
    ? html`<section class="panel" id="new-token"><h2>New token #${options.created.id}</h2>
<p class="lead">Copy it now: it is shown only this once, and only its hash is kept.</p>
<pre id="token-secret">${options.created.token}</pre>
<p class="lead">Use it as <code>Authorization: Bearer …</code>, or run <code>harmonia-ci login ${options.publicUrl}</code> and paste it.</p></section>`
    : null;
  const rows = tokens.map(
    (t) => html`<tr><td class="num">#${t.id}</td><td><code>${t.scope}</code></td><td>${t.description}</td><td class="num">${timeAgo(t.createdAt)}</td>
      <td class="num">${t.expiresAt ? timeAgo(t.expiresAt) : html`<span class="muted">never</span>`}</td><td class="num">${timeAgo(t.lastUsedAt)}</td>
      <td><form class="action" method="post" action="/ci/settings/tokens/${t.id}/revoke">${token}<button type="submit">Revoke</button></form></td></tr>`,
  );
  const list =
    tokens.length === 0
      ? html`<p class="lead">You have no live tokens.</p>`
      : html`<div class="scroll"><table class="data"><thead><tr><th class="num">Token</th><th>Scope</th><th>Description</th><th class="num">Created</th><th class="num">Expires</th><th class="num">Last used</th><th></th></tr></thead>
<tbody id="tokens">${rows}</tbody></table></div>`;
  return html`${created}<section class="panel"><h2>API tokens <span class="aside">for scripts and <code>harmonia-ci</code>; a token never does more than you may</span></h2>
<form class="settings" method="post" action="/ci/settings/tokens">${token}
  <label>Scope <select name="scope">${SCOPES.map(([value, label]) => html`<option value="${value}"${value === 'read' ? html` selected` : null}>${label}</option>`)}</select></label>
  <label>Expires after <select name="expires">${TOKEN_EXPIRIES.map(([value, label]) => html`<option value="${value}"${value === '30d' ? html` selected` : null}>${label}</option>`)}</select></label>
  <label>Description <input type="text" name="description" maxlength="200" placeholder="laptop, deploy script…"></label>
  <button type="submit">Create token</button>
</form>${list}</section>`;
}
