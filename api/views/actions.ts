/** The actions panel of an eval or build page: one small form per action, each with the CSRF token. */
import { html, type SafeHtml } from './html.ts';

export interface ActionButton {
  /** The route the form posts to. */
  action: string;
  label: string;
}

/** Renders the buttons, or nothing when there are none. */
export function renderActions(buttons: readonly ActionButton[], csrf: string): SafeHtml | null {
  if (buttons.length === 0) return null;
  const forms = buttons.map(
    (b) => html`<form class="action" method="post" action="${b.action}"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">${b.label}</button></form>`,
  );
  return html`<section class="panel compact" id="actions"><h2>Actions</h2><p class="lead">${forms}</p></section>`;
}
