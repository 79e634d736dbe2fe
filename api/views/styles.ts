/**
 * The one stylesheet of every `/ci/` page, inlined: no build step and no extra request. Colours
 * come from variables, so the light and dark schemes differ only in the variable blocks, and each
 * state has one foreground/background pair used by pills, icons and progress bars alike.
 */
import { raw } from './html.ts';

export const stylesheet = raw(`
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #ffffff; --text: #1b1f24; --muted: #5b6570; --border: #d9dee4; --row: #f3f5f8;
  --accent: #3b6fd8; --ok: #1f883d; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --run: #0969da; --run-bg: #ddf4ff; --cache: #8250df; --cache-bg: #fbefff;
  --off: #6e7781; --off-bg: #eaeef2; --log-bg: #0d1117; --log-text: #d1d7e0;
}
a.job-link { margin-left: .5em; font-size: .85em; }
ul.aggregates, ul.constituents { list-style: none; margin: 0; padding: 0; }
ul.aggregates > li { padding: .4rem 0; border-top: 1px solid var(--border); }
ul.aggregates > li:first-child { border-top: none; }
ul.constituents { padding-left: 1.2rem; display: flex; flex-wrap: wrap; gap: .2rem 1rem; margin-top: .2rem; }
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1217; --panel: #171b22; --text: #e6e9ee; --muted: #9aa4b1; --border: #2a313c; --row: #1c212a;
    --accent: #7aa2f7; --ok: #3fb950; --ok-bg: #12261b; --bad: #f85149; --bad-bg: #2d1517;
    --warn: #d29922; --warn-bg: #2b2111; --run: #58a6ff; --run-bg: #0c2d4b; --cache: #bc8cff; --cache-bg: #271c3a;
    --off: #8b949e; --off-bg: #21262d; --log-bg: #0a0d12; --log-text: #c9d1d9;
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
header h1 { white-space: nowrap; }
form.account, form.action { display: inline-flex; gap: .5rem; align-items: center; margin: 0; }
form.settings { display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-items: end; margin: 0 0 .8rem; }
form.settings label { display: grid; gap: .25rem; font-size: .88rem; color: var(--muted); }
main { max-width: 78rem; margin: 1.5rem auto; padding: 0 1.5rem; display: grid; gap: 1.25rem; }
main > div { display: grid; gap: 1.25rem; min-width: 0; }
section.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 1.1rem 1.3rem; min-width: 0; }
section.panel h2 { margin: 0 0 .8rem; font-size: 1rem; display: flex; align-items: center; gap: .6rem; flex-wrap: wrap; }
section.panel h2 .aside { margin-left: auto; font-weight: 400; font-size: .85rem; color: var(--muted); }
section.compact { padding: .7rem 1.1rem; }
section.compact h2 { margin-bottom: .4rem; font-size: .9rem; }
p.lead { margin: 0; color: var(--muted); }
table { width: 100%; border-collapse: collapse; }
td, th { padding: .5rem .4rem; border-top: 1px solid var(--border); vertical-align: top; }
tr:first-child td { border-top: none; }
td.name { width: 11rem; font-weight: 600; }
td.detail { color: var(--muted); overflow-wrap: anywhere; }
.pill { display: inline-block; min-width: 6.5rem; text-align: center; padding: .1rem .6rem;
  border-radius: 999px; font-size: .8rem; font-weight: 600; background: var(--off-bg); color: var(--off); }
.pill.ok { background: var(--ok-bg); color: var(--ok); }
.pill.failed, .pill.unavailable { background: var(--bad-bg); color: var(--bad); }
footer { text-align: center; color: var(--muted); font-size: .8rem; padding: 1rem; }
code, .mono, pre { font: .86em/1.45 ui-monospace, SFMono-Regular, "JetBrains Mono", Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.crumbs { font-size: .88rem; color: var(--muted); display: flex; gap: .4rem; flex-wrap: wrap; align-items: center; }

/* Dense data tables */
.scroll { overflow-x: auto; margin: 0 -.4rem; }
table.data { font-size: .9rem; }
table.data th { text-align: left; font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); border-top: none; padding-top: 0; white-space: nowrap; }
table.data td { padding: .42rem .4rem; vertical-align: baseline; }
table.data tbody tr:hover { background: var(--row); }
table.data td.num, table.data th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.data td.nowrap { white-space: nowrap; }
td.attr { font-weight: 600; overflow-wrap: anywhere; }
td.why { color: var(--muted); overflow-wrap: anywhere; max-width: 28rem; }
td.why .err { color: var(--bad); }

/* States: one colour pair each, shared by pills, icons and bar segments */
.st { display: inline-flex; align-items: center; gap: .3rem; padding: .05rem .55rem .05rem .45rem; border-radius: 999px;
  font-size: .78rem; font-weight: 600; white-space: nowrap; background: var(--off-bg); color: var(--off); }
.st .ic { font-size: .8rem; line-height: 1; }
.s-succeeded, .s-ok { --fg: var(--ok); --bgc: var(--ok-bg); }
.s-failed, .s-timed-out, .s-eval-error, .s-failed-with-output { --fg: var(--bad); --bgc: var(--bad-bg); }
.s-dep-failed { --fg: var(--warn); --bgc: var(--warn-bg); }
.s-building, .s-uploading, .s-evaluating, .s-running { --fg: var(--run); --bgc: var(--run-bg); }
.s-cached, .s-skipped { --fg: var(--cache); --bgc: var(--cache-bg); }
.s-pending, .s-queued, .s-cancelled { --fg: var(--off); --bgc: var(--off-bg); }
.st[class*=" s-"] { color: var(--fg); background: var(--bgc); }
.s-building .ic, .s-uploading .ic, .s-evaluating .ic { animation: pulse 1.4s ease-in-out infinite; }
@keyframes pulse { 50% { opacity: .35; } }
.badge { display: inline-block; padding: 0 .4rem; border-radius: 4px; font-size: .72rem; font-weight: 600;
  border: 1px solid var(--border); color: var(--muted); vertical-align: 1px; }
.badge.cache { color: var(--cache); border-color: currentColor; }

/* Progress bar: segments in state colours over the track */
.bar { display: flex; height: .55rem; border-radius: 999px; overflow: hidden; background: var(--off-bg); min-width: 5rem; }
.bar.big { height: .8rem; margin: .6rem 0 .5rem; }
.bar span { background: var(--fg); }
.bar span.s-building { background-image: linear-gradient(90deg, transparent, rgba(255,255,255,.35), transparent);
  background-size: 200% 100%; animation: slide 1.6s linear infinite; background-color: var(--fg); }
@keyframes slide { from { background-position: 200% 0; } to { background-position: -200% 0; } }
.progress-cell { min-width: 11rem; }
.progress-cell .bar { margin: .35rem 0 .15rem; }
.progress-cell small { color: var(--muted); }
.legend { display: flex; gap: .9rem; flex-wrap: wrap; font-size: .82rem; color: var(--muted); }
.legend b { color: var(--text); font-variant-numeric: tabular-nums; }
.legend i { display: inline-block; width: .6rem; height: .6rem; border-radius: 2px; background: var(--fg); margin-right: .3rem; }

/* Key/value facts */
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .3rem 1.2rem; margin: 0; font-size: .9rem; }
@media (min-width: 1000px) {
  dl.facts.two { grid-template-columns: max-content minmax(0, 1fr) max-content minmax(0, 1fr); }
  dl.facts.two dd.full { grid-column: 2 / -1; }
}
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.title { display: flex; align-items: center; gap: .7rem; flex-wrap: wrap; margin: 0 0 .6rem; }
.title h2 { margin: 0 !important; font-size: 1.2rem !important; }
.title .links { margin-left: auto; display: flex; gap: .9rem; font-size: .85rem; }
pre.error { background: var(--bad-bg); color: var(--bad); padding: .7rem .9rem; border-radius: 8px; margin: .6rem 0 0;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 20rem; overflow-y: auto; }
.hash { color: var(--muted); }
.live { font-size: .78rem; color: var(--run); font-weight: 600; }
.live::before { content: "●"; margin-right: .3rem; animation: pulse 1.4s ease-in-out infinite; }

/* Build log */
pre.log { background: var(--log-bg); color: var(--log-text); padding: .8rem 1rem; border-radius: 8px; margin: 0;
  max-height: 70vh; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; font-size: .8rem; }
.pager { display: flex; justify-content: space-between; margin-top: .8rem; font-size: .9rem; }

@media (max-width: 700px) {
  header { padding: .6rem .8rem; gap: .4rem 1rem; flex-wrap: wrap; }
  header nav { gap: .8rem; font-size: .85rem; margin-left: 0; }
  main { padding: 0 .6rem; margin: .8rem auto; }
  section.panel { padding: .8rem .8rem; }
  .wide-only { display: none; }
  dl.facts { grid-template-columns: 5.5rem minmax(0, 1fr); gap: .25rem .7rem; }
  /* Jobs become two-line cards: attribute and state, then the details underneath. */
  table.jobs thead { display: none; }
  table.jobs tr { display: grid; grid-template-columns: minmax(0, 1fr) auto auto; align-items: center;
    border-top: 1px solid var(--border); padding: .3rem 0; }
  table.jobs tr:first-child { border-top: none; }
  table.jobs td { border: none; padding: .1rem .4rem; }
  table.jobs td.why { grid-column: 1 / -1; max-width: none; }
  table.jobs td.why:empty { display: none; }
  /* Evals become cards: id, project and state; ref, commit and age; then the progress. */
  table.evals thead { display: none; }
  table.evals tr { display: grid; grid-template-columns: auto minmax(0, 1fr) auto;
    grid-template-areas: "id project state" "ref commit age" "progress progress progress";
    border-top: 1px solid var(--border); padding: .4rem 0; }
  table.evals tr:first-child { border-top: none; }
  table.evals td { border: none; padding: .05rem .4rem; }
  .c-id { grid-area: id; } .c-project { grid-area: project; } .c-state { grid-area: state; } .c-ref { grid-area: ref; }
  .c-commit { grid-area: commit; } .c-age { grid-area: age; } .c-progress { grid-area: progress; }
  section.compact td.name { width: auto; }
  section.compact tr { display: grid; grid-template-columns: minmax(0, 1fr) auto; }
  section.compact td { border: none; padding: .15rem .4rem; }
  section.compact td.detail { grid-column: 1 / -1; border-bottom: 1px solid var(--border); padding-bottom: .4rem; }
}
`);
