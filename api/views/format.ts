/** Small pieces every dashboard page uses: times, durations, states, store paths and links. */
import { html, type SafeHtml } from './html.ts';

/** `3 min ago` from an ISO time; the browser refreshes it (api/views/scripts.ts does the same sums). */
export function relativeTime(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  if (seconds < 30 * 86_400) return `${Math.floor(seconds / 86_400)} d ago`;
  return iso.slice(0, 10);
}

/** `2026-01-02 03:04:05 UTC`: the absolute time shown on hover. */
export function absoluteTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** A relative time with the absolute one in its title; the page script keeps it current. */
export function timeAgo(iso: string | null): SafeHtml {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}" title="${absoluteTime(iso)}" data-rel>${relativeTime(iso)}</time>`;
}

/** `0.8 s`, `42 s`, `3 min 4 s`, `1 h 12 min`. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Seconds between two ISO times, or from `start` until now while it runs. */
export function secondsBetween(start: string | null, end: string | null, now = Date.now()): number | null {
  if (!start) return null;
  return ((end ? Date.parse(end) : now) - Date.parse(start)) / 1000;
}

/** A duration; while still running, the page script counts it up from `start`. */
export function elapsed(start: string | null, end: string | null): SafeHtml {
  const text = formatDuration(secondsBetween(start, end));
  if (start && !end) return html`<span data-since="${start}">${text}</span>`;
  return html`${text}`;
}

const ICONS: Record<string, string> = {
  succeeded: '✔',
  failed: '✘',
  'timed-out': '⏱',
  'failed-with-output': '✘',
  'eval-error': '✘',
  'dep-failed': '⊘',
  building: '▶',
  uploading: '⇡',
  evaluating: '▶',
  running: '▶',
  pending: '○',
  queued: '○',
  cancelled: '◌',
  cached: '✔',
  skipped: '↷',
};

/** A state as a coloured pill with an icon; `label` overrides the word shown. */
export function statePill(state: string, label = state): SafeHtml {
  return html`<span class="st s-${state}"><span class="ic" aria-hidden="true">${ICONS[state] ?? '·'}</span>${label}</span>`;
}

/** `main` for branches, `PR #12` for pull requests, the full ref otherwise. */
export function shortRef(ref: string): string {
  const pull = /^refs\/pull\/(\d+)\//.exec(ref);
  if (pull) return `PR #${pull[1]}`;
  if (ref.startsWith('refs/heads/')) return ref.slice('refs/heads/'.length);
  if (ref.startsWith('refs/tags/')) return `tag ${ref.slice('refs/tags/'.length)}`;
  return ref;
}

/** A ref, short, with the full ref on hover. */
export function refLabel(ref: string): SafeHtml {
  return html`<span class="mono" title="${ref}">${shortRef(ref)}</span>`;
}

/** A store path with its hash part dimmed, so the name stands out. */
export function storePath(path: string): SafeHtml {
  const match = /^(.*\/)([0-9a-z]{32})(-.*)$/.exec(path);
  if (!match) return html`<span class="mono">${path}</span>`;
  return html`<span class="mono"><span class="hash">${match[1]}${match[2]}</span>${match[3]}</span>`;
}

/** The first line of a message, cut at `max` characters. */
export function firstLine(text: string, max = 160): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** `1.4 MiB` */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// Colour and cursor sequences from builders' terminals: noise in a browser. Built from a string
// because the escape character may not appear in a regular expression literal (no-control-regex).
const ESC = String.fromCharCode(27);
const BEL = String.fromCharCode(7);
const ANSI = new RegExp(`${ESC}\\[[0-9;?]*[ -/]*[@-~]|${ESC}\\][^${BEL}${ESC}]*(?:${BEL}|${ESC}\\\\)|${ESC}[@-Z\\\\-_]`, 'g');

/** Log text without terminal escape sequences. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** `/ci/evals/<id>` */
export const evalHref = (id: string): string => `/ci/evals/${encodeURIComponent(id)}`;

/** `/ci/builds/<hash part>` of a derivation path. */
/** A job's page: one attribute of one eval. */
export function jobHref(evalId: string, attr: string): string {
  return `/ci/evals/${encodeURIComponent(evalId)}/jobs/${encodeURIComponent(attr)}`;
}

export function buildHref(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf('/') + 1);
  return `/ci/builds/${encodeURIComponent(base.slice(0, 32))}`;
}

/** `/ci/projects/<owner>/<repo>`: the slash of a project name stays a path separator. */
export function projectHref(name: string): string {
  return `/ci/projects/${name.split('/').map(encodeURIComponent).join('/')}`;
}

/** `/ci/projects/<owner>/<repo>/jobs/<attr>`: one attribute across the project's evals. */
export function projectJobHref(project: string, attr: string): string {
  return `${projectHref(project)}/jobs/${encodeURIComponent(attr)}`;
}

/** The Temporal Web UI page of a workflow, when the UI is known. */
export function workflowHref(ui: TemporalUi | undefined, workflowId: string): string | undefined {
  if (!ui) return undefined;
  return `${ui.url.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(ui.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** Where the Temporal Web UI is and which namespace this instance uses. */
export interface TemporalUi {
  url: string;
  namespace: string;
}
