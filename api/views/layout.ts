/** The page shell shared by every `/ci/` page: head, colour scheme, header bar. */
import { html, raw, type SafeHtml } from './html.ts';

// One stylesheet inline: no build step and no extra request. Colours come from
// variables so the light and dark schemes differ only in the variable block.
const stylesheet = raw(`
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #ffffff; --text: #1b1f24; --muted: #5b6570; --border: #d9dee4;
  --accent: #3b6fd8; --ok: #1f883d; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --off: #6e7781; --off-bg: #eaeef2;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1217; --panel: #171b22; --text: #e6e9ee; --muted: #9aa4b1; --border: #2a313c;
    --accent: #7aa2f7; --ok: #3fb950; --ok-bg: #12261b; --bad: #f85149; --bad-bg: #2d1517;
    --off: #8b949e; --off-bg: #21262d;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header { display: flex; align-items: center; gap: 1.5rem; padding: .9rem 1.5rem;
  background: var(--panel); border-bottom: 1px solid var(--border); }
header h1 { margin: 0; font-size: 1.15rem; letter-spacing: .02em; }
header h1 a { color: var(--text); }
header nav { display: flex; gap: 1.1rem; margin-left: auto; font-size: .93rem; }
main { max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; display: grid; gap: 1.5rem; }
section.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 1.1rem 1.3rem; }
section.panel h2 { margin: 0 0 .8rem; font-size: 1rem; display: flex; align-items: center; gap: .6rem; }
p.lead { margin: 0; color: var(--muted); }
table { width: 100%; border-collapse: collapse; }
td { padding: .5rem .4rem; border-top: 1px solid var(--border); vertical-align: top; }
tr:first-child td { border-top: none; }
td.name { width: 11rem; font-weight: 600; }
td.detail { color: var(--muted); overflow-wrap: anywhere; }
.pill { display: inline-block; min-width: 6.5rem; text-align: center; padding: .1rem .6rem;
  border-radius: 999px; font-size: .8rem; font-weight: 600; background: var(--off-bg); color: var(--off); }
.pill.ok { background: var(--ok-bg); color: var(--ok); }
.pill.failed, .pill.unavailable { background: var(--bad-bg); color: var(--bad); }
footer { text-align: center; color: var(--muted); font-size: .8rem; padding: 1rem; }
code { font: .88em ui-monospace, SFMono-Regular, Menlo, monospace; }
`);

export interface PageOptions {
  title: string;
  /** Absolute URL of the Temporal Web UI, shown in the header when known. */
  temporalUiUrl?: string | undefined;
  body: SafeHtml;
  script?: SafeHtml;
}

/** Renders a complete HTML document around `body`. */
export function renderPage({ title, temporalUiUrl, body, script }: PageOptions): string {
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
  <nav>${temporalLink}<a href="/healthz">healthz</a></nav>
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
