/** The page shell shared by every `/ci/` page: head, colour scheme, header bar. */
import { html, type SafeHtml } from './html.ts';
import { stylesheet } from './styles.ts';

/** The header's account part: who is logged in (with a CSRF token for logout), or where to log in. */
export type AccountView = { login: string; csrf: string } | { loginWith: readonly string[] };

function accountLinks(account: AccountView | undefined): SafeHtml | null {
  if (!account) return null;
  if ('login' in account) {
    return html`<form class="account" method="post" action="/auth/logout"><a href="/ci/settings/tokens" title="API tokens">${account.login}</a><input type="hidden" name="_csrf" value="${account.csrf}"><button type="submit">Log out</button></form>`;
  }
  return html`${account.loginWith.map((forge) => html`<a href="/auth/${forge}/login">Log in with ${forge === 'github' ? 'GitHub' : 'Gitea'}</a>`)}`;
}

export interface PageOptions {
  title: string;
  /** Absolute URL of the Temporal Web UI, shown in the header when known. */
  temporalUiUrl?: string | undefined;
  body: SafeHtml;
  script?: SafeHtml;
  account?: AccountView | undefined;
}

/** Renders a complete HTML document around `body`. */
export function renderPage({ title, temporalUiUrl, body, script, account }: PageOptions): string {
  const temporalLink = temporalUiUrl ? html`<a href="${temporalUiUrl}" rel="noopener">Temporal Web UI</a>` : null;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${title}</title>
<style>${stylesheet}</style>
</head>
<body>
<header>
  <h1><a href="/ci/">harmonia-ci</a></h1>
  <nav><a href="/ci/">Evals</a><a href="/ci/projects">Projects</a><a href="/ci/nodes">Nodes</a>${temporalLink}<a href="/healthz">healthz</a>${accountLinks(account)}</nav>
</header>
<main>
${body}
</main>
<footer>harmonia-ci</footer>
${script ? html`<script>${script}</script>` : null}
</body>
</html>
`.value;
}
