/** The settings panel of a project page, for the project's admins: enable or disable, PR trust, shares, polling. */
import type { ProjectPage } from '../../queries/index.ts';
import { html, type SafeHtml } from './html.ts';

const TRUST: Array<[string, string]> = [
  ['collaborators', 'collaborators: pull requests of collaborators are built with the project\'s settings'],
  ['everyone', 'everyone: every pull request is built as trusted'],
  ['none', 'none: pull requests are evaluated untrusted only'],
];

/** `300` → `5m`: how the poll interval field shows it. */
function interval(seconds: number | null): string {
  if (seconds === null) return '';
  return seconds % 3600 === 0 ? `${seconds / 3600}h` : seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

/** Forms posting to the project routes with the CSRF token; each change is audited. */
export function renderProjectSettings(project: ProjectPage, csrf: string): SafeHtml {
  const [owner = '', repo = ''] = project.repository.split('/');
  const base = `/api/projects/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;
  const token = html`<input type="hidden" name="_csrf" value="${csrf}">`;
  const options = TRUST.map(([value, label]) => html`<option value="${value}"${project.prTrust === value ? html` selected` : null}>${label}</option>`);
  const disable = project.enabled
    ? html`<form class="action" method="post" action="${base}/disable">${token}<button type="submit">Disable</button></form>`
    : null;
  return html`<section class="panel" id="settings"><h2>Settings <span class="aside">admins of ${project.repository}</span></h2>
<form class="settings" method="post" action="${base}/enable">${token}<input type="hidden" name="forge" value="${project.forge}">
  <label>Pull request trust <select name="prTrust">${options}</select></label>
  <label>Scheduling shares <input type="number" name="schedulingShares" min="1" value="${String(project.schedulingShares)}"></label>
  <label>Poll interval <input type="text" name="pollInterval" value="${interval(project.pollIntervalSeconds)}" placeholder="none (webhooks only), or e.g. 5m"></label>
  <button type="submit">${project.enabled ? 'Save settings' : 'Enable with these settings'}</button>
</form>${disable}</section>`;
}
