/**
 * The dashboard's live streams (server-sent events, protocol in api/views/scripts.ts):
 * `/ci/evals/:id/events` sends the eval's header, progress and changed job rows;
 * `/ci/builds/:id/log/events` sends the build's header and its log tail. Each polls PostgreSQL
 * about once a second with a cheap version query and reads and renders only when that changed.
 */
import type { FastifyInstance } from 'fastify';
import type { CacheBackend } from '../../cache/types.ts';
import { FINAL_BUILD_STATUSES } from '../../workflows/types.ts';
import {
  type EvalVersion,
  evalVersionKey,
  fullLogHref,
  parseEvalVersion,
  readBuildLogVersion,
  readBuildPage,
  readEvalJobs,
  readEvalOverview,
  readEvalVersion,
  readLogTail,
  resolveBuildKey,
} from '../../queries/index.ts';
import type { EventStreams, Poll } from '../dashboard/event-stream.ts';
import { evalFinished } from '../dashboard/state.ts';
import { errorResponses } from '../error-handler.ts';
import { NotFoundError } from '../errors.ts';
import { logText, logUpdated, renderBuildHead } from '../views/build.ts';
import { jobRowId, renderEvalHead, renderEvalSummary, renderJobRow, renderJobsBody } from '../views/evals.ts';
import type { TemporalUi } from '../views/format.ts';
import { html } from '../views/html.ts';

export interface DashboardEventRouteOptions {
  temporalUi?: TemporalUi | undefined;
  cache?: CacheBackend | null | undefined;
  streams: EventStreams;
}

const streamResponse = { 200: { content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses };
const versionQuery = { type: 'object', properties: { v: { type: 'string', maxLength: 200 }, all: { type: 'string', enum: ['0', '1'] } } };

/**
 * Polls one eval. `known` is what the client has: from its page, or the id of the last event it
 * got, which records the attribute count of its table and the build time its rows are current to.
 */
function evalPoll(
  app: FastifyInstance,
  evalId: string,
  known: EvalVersion | undefined,
  options: { temporalUi?: TemporalUi | undefined; all: boolean },
): Poll {
  let lastKey = known ? evalVersionKey(known) : undefined;
  let tableAttrs = known?.attrs;
  let rowsSince = known?.buildsChangedAt ?? null;
  // Rows this stream sent, so the overlapping change window never sends one twice.
  const sent = new Map<string, string>();
  let first = true;
  return async (sink) => {
    const version = await readEvalVersion(app.db, evalId);
    if (!version) return 'end';
    const changed = evalVersionKey(version) !== lastKey;
    if (!changed && !first) return 'continue';
    first = false;
    const overview = await readEvalOverview(app.db, evalId);
    if (!overview) return 'end';
    if (changed) {
      const swaps: Record<string, string> = {
        'eval-head': renderEvalHead(overview, options).value,
        summary: renderEvalSummary(overview).value,
      };
      // While evaluating, attributes arrive in batches: the table follows once they are all there.
      const evaluating = overview.status === 'queued' || overview.status === 'running';
      if (!evaluating && version.attrs !== tableAttrs) {
        swaps.jobs = renderJobsBody(await readEvalJobs(app.db, evalId), options.all, evalId).value;
        tableAttrs = version.attrs;
        rowsSince = version.buildsChangedAt;
      } else if (!evaluating && version.buildsChangedAt !== rowsSince) {
        for (const job of await readEvalJobs(app.db, evalId, rowsSince ? { changedSince: rowsSince } : {})) {
          const id = jobRowId(job.attr);
          const markup = renderJobRow(job, evalId).value;
          if (sent.get(id) === markup) continue;
          sent.set(id, markup);
          swaps[id] = markup;
        }
        rowsSince = version.buildsChangedAt;
      }
      lastKey = evalVersionKey(version);
      sink.send('swap', swaps, evalVersionKey({ ...version, attrs: tableAttrs ?? -1, buildsChangedAt: rowsSince }));
    }
    return evalFinished(overview) ? 'end' : 'continue';
  };
}

/** Polls one build's row and log tail; `known` is `<build changed>|<log changed>` as the client has it. */
function buildPoll(
  app: FastifyInstance,
  drvPath: string,
  known: string | undefined,
  options: Omit<DashboardEventRouteOptions, 'streams'> & { liveUrl: string },
): Poll {
  let [buildSeen, logSeen] = (known ?? '').split('|');
  return async (sink) => {
    const version = await readBuildLogVersion(app.db, drvPath);
    if (version.status === null) return 'end';
    const final = FINAL_BUILD_STATUSES.includes(version.status);
    const id = `${version.buildChangedAt ?? ''}|${version.logChangedAt ?? ''}`;
    if ((version.logChangedAt ?? '') !== logSeen) {
      const log = await readLogTail(app.db, drvPath);
      sink.send('text', { log: logText(log, version.status) }, id);
      sink.send('swap', { 'log-updated': html`<span id="log-updated">${logUpdated(log?.updatedAt ?? null)}</span>`.value }, id);
      logSeen = version.logChangedAt ?? '';
    }
    if ((version.buildChangedAt ?? '') !== buildSeen) {
      const page = await readBuildPage(app.db, drvPath);
      if (page) {
        const head = renderBuildHead(page, {
          temporalUi: options.temporalUi,
          liveUrl: final ? undefined : options.liveUrl,
          fullLogHref: await fullLogHref(options.cache, page),
        });
        sink.send('swap', { 'build-head': head.value }, id);
      }
      buildSeen = version.buildChangedAt ?? '';
    }
    return final ? 'end' : 'continue';
  };
}

/** Registers the event stream routes. */
export async function dashboardEventRoutes(app: FastifyInstance, options: DashboardEventRouteOptions): Promise<void> {
  const { streams, temporalUi } = options;

  // Live updates of an eval page.
  app.get<{ Params: { id: string }; Querystring: { v?: string; all?: string } }>(
    '/ci/evals/:id/events',
    { schema: { querystring: versionQuery, response: streamResponse } },
    async (request, reply) => {
      const { id } = request.params;
      const overview = /^\d{1,18}$/.test(id) ? await readEvalOverview(app.db, id) : undefined;
      if (!overview || !(await app.access.visibility(request)).project(overview.project)) throw new NotFoundError(`no eval ${id}`);
      const all = request.query.all === '1';
      streams.start(request, reply, (known) => evalPoll(app, id, parseEvalVersion(known), { temporalUi, all }));
    },
  );

  // Live updates of a build page: its header and log tail.
  app.get<{ Params: { id: string }; Querystring: { v?: string } }>(
    '/ci/builds/:id/log/events',
    { schema: { querystring: versionQuery, response: streamResponse } },
    async (request, reply) => {
      const drvPath = await resolveBuildKey(app.db, request.params.id);
      if (!drvPath || !(await app.access.derivationVisible(request, drvPath))) throw new NotFoundError(`no build ${request.params.id}`);
      streams.start(request, reply, (known) => buildPoll(app, drvPath, known, { ...options, liveUrl: request.url }));
    },
  );
}
