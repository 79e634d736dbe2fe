/**
 * The few lines of browser script the dashboard has. Pages work without them; with them, times
 * stay relative and pages that can still change follow a server-sent event stream.
 *
 * Stream protocol (api/routes/dashboard-events.ts): `swap` carries `{ elementId: markup }` and
 * replaces each element by the server-rendered (escaped) markup (job rows then regroup by their
 * `data-rank`, failures first); `text` carries
 * `{ elementId: text }` and sets plain text (logs never become markup); `end` means nothing more
 * will change.
 */
import { raw } from './html.ts';

/** Keeps `<time data-rel>` relative and `[data-since]` durations counting (same sums as api/views/format.ts). */
export const relativeTimeScript = raw(`
(() => {
  const ago = (iso) => {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    if (s < 30 * 86400) return Math.floor(s / 86400) + ' d ago';
    return iso.slice(0, 10);
  };
  const duration = (s) => {
    s = Math.max(0, s);
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  };
  const refresh = () => {
    for (const t of document.querySelectorAll('time[data-rel]')) t.textContent = ago(t.getAttribute('datetime'));
    for (const e of document.querySelectorAll('[data-since]')) e.textContent = duration((Date.now() - Date.parse(e.dataset.since)) / 1000);
  };
  window.harmoniaRefreshTimes = refresh;
  setInterval(refresh, 1000);
})();
`);

/** Follows the stream named by `data-live` on the page, if any. */
export const liveScript = raw(`
(() => {
  const root = document.querySelector('[data-live]');
  const log = document.getElementById('log');
  const atBottom = (el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
  // Rows carry their rank (failures first); a row whose state changed moves to its group.
  const reorder = () => {
    const body = document.getElementById('jobs');
    if (!body) return;
    const rows = [...body.querySelectorAll('tr[data-rank]')];
    const sorted = [...rows].sort((a, b) => Number(a.dataset.rank) - Number(b.dataset.rank));
    if (sorted.some((row, i) => row !== rows[i])) body.append(...sorted);
  };
  if (log) log.scrollTop = log.scrollHeight;
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.live);
  source.addEventListener('swap', (event) => {
    for (const [id, markup] of Object.entries(JSON.parse(event.data))) {
      const old = document.getElementById(id);
      if (!old) continue;
      const template = document.createElement('template');
      template.innerHTML = markup;
      old.replaceWith(template.content);
    }
    reorder();
    if (window.harmoniaRefreshTimes) window.harmoniaRefreshTimes();
  });
  source.addEventListener('text', (event) => {
    for (const [id, text] of Object.entries(JSON.parse(event.data))) {
      const el = document.getElementById(id);
      if (!el) continue;
      const follow = atBottom(el);
      el.textContent = text;
      if (follow) el.scrollTop = el.scrollHeight;
    }
  });
  source.addEventListener('end', () => {
    source.close();
    root.removeAttribute('data-live');
    const live = document.getElementById('live');
    if (live) live.remove();
  });
})();
`);
