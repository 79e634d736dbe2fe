/**
 * The HTML dashboard under `/ci/`: one eval (the page commit statuses link to), one build with
 * its live log, projects and their refs. Pages are rendered on the server from PostgreSQL; the
 * live parts follow the event streams of api/routes/dashboard-events.ts. The JSON twins are the
 * operator routes under `/api/` (api/routes/ops.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CacheBackend } from '../../cache/types.ts';
import { FINAL_BUILD_STATUSES } from '../../workflows/types.ts';
import {
  evalVersionKey,
  fullLogHref,
  listAudit,
  listEvalPage,
  listProjects,
  readBuildLogVersion,
  readBuildPage,
  readEvalJobs,
  readEvalOverview,
  readEvalVersion,
  readJobHistory,
  readProjectPage,
} from '../../queries/index.ts';
import { renderJobHistoryBody } from '../views/job-history.ts';
import { EventStreams } from '../dashboard/event-stream.ts';
import { evalFinished } from '../dashboard/state.ts';
import type { ServerConfig } from '../../config/types.ts';
import { includes } from '../../access/rights.ts';
import { accountView } from '../auth/account.ts';
import { renderActions, type ActionButton } from '../views/actions.ts';
import { REBUILDABLE } from './actions.ts';
import { errorResponses } from '../error-handler.ts';
import { renderBuildBody } from '../views/build.ts';
import { renderEvalBody } from '../views/evals.ts';
import { renderJobBody } from '../views/job.ts';
import { projectHref, type TemporalUi } from '../views/format.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { renderPage, type AccountView } from '../views/layout.ts';
import { renderProjectBody, renderProjectsBody } from '../views/projects.ts';
import { renderDeploymentsPanel } from '../views/deployments.ts';
import { renderAuditPanel } from '../views/audit.ts';
import { renderProjectSettings } from '../views/project-settings.ts';
import { listProjectDeployments } from '../../queries/deployments.ts';
import { liveScript, relativeTimeScript } from '../views/scripts.ts';
import { dashboardEventRoutes } from './dashboard-events.ts';
import { nodeRoutes } from './nodes.ts';

export interface DashboardRouteOptions {
  config: ServerConfig;
  temporalUi?: TemporalUi | undefined;
  /** The binary cache, to link a build's full log when it is there. */
  cache?: CacheBackend | null | undefined;
}

const htmlResponse = { 200: { content: { 'text/html': { schema: { type: 'string' } } } }, ...errorResponses };
/** Evals on one page of a list. */
export const EVALS_PER_PAGE = 30;
/** Audit entries on a project page. */
const AUDIT_ENTRIES = 20;

/** Sends a complete dashboard page with its scripts. */
export function sendPage(
  reply: FastifyReply,
  options: { title: string; body: SafeHtml; temporalUi?: TemporalUi | undefined; status?: number; account?: AccountView | undefined },
): FastifyReply {
  const page = renderPage({
    title: options.title,
    temporalUiUrl: options.temporalUi?.url,
    body: options.body,
    script: html`${relativeTimeScript}${liveScript}`,
    account: options.account,
  });
  return reply
    .code(options.status ?? 200)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(page);
}

function notFound(reply: FastifyReply, what: string, temporalUi: TemporalUi | undefined): FastifyReply {
  const body = html`<section class="panel"><h2>Not found</h2><p class="lead">There is no ${what}. <a href="/ci/">Back to the recent evals</a>.</p></section>`;
  return sendPage(reply, { title: 'Not found · harmonia-ci', body, temporalUi, status: 404 });
}

/** The buttons a logged-in person with write access on `project` may press; nothing for anyone else. */
async function actionsFor(request: FastifyRequest, project: string, buttons: ActionButton[], account: AccountView | undefined): Promise<SafeHtml | null> {
  if (!account || !('csrf' in account)) return null;
  if (!includes(await request.server.access.permissionOnProject(request, project), 'write')) return null;
  return renderActions(buttons, account.csrf);
}

/** Registers the dashboard pages and their event streams. */
export async function dashboardRoutes(app: FastifyInstance, options: DashboardRouteOptions): Promise<void> {
  const { temporalUi, cache, config } = options;
  const streams = new EventStreams(app.log);
  app.addHook('preClose', async () => streams.closeAll());
  await app.register(dashboardEventRoutes, { temporalUi, cache, streams });
  await app.register(nodeRoutes, { config, streams, temporalUi });

  app.get<{ Params: { id: string }; Querystring: { all?: string } }>(
    '/ci/evals/:id',
    {
      schema: {
        // One eval: header, progress and jobs (failures first), updated live while it runs.
        querystring: { type: 'object', properties: { all: { type: 'string', enum: ['0', '1'] } } },
        response: htmlResponse,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      // The version first: anything that changes after it reaches the page through the stream.
      const version = /^\d{1,18}$/.test(id) ? await readEvalVersion(app.db, id) : undefined;
      const overview = version ? await readEvalOverview(app.db, id) : undefined;
      if (!version || !overview || !(await app.access.visibility(request)).project(overview.project)) return notFound(reply, `eval ${id}`, temporalUi);
      const jobs = await readEvalJobs(app.db, id);
      const all = request.query.all === '1';
      const liveUrl = evalFinished(overview) ? undefined : `/ci/evals/${id}/events?v=${encodeURIComponent(evalVersionKey(version))}${all ? '&all=1' : ''}`;
      const buttons: ActionButton[] = [
        ...(evalFinished(overview) ? [] : [{ action: `/api/evals/${id}/cancel`, label: 'Cancel' }]),
        { action: `/api/evals/${id}/rebuild-failed`, label: 'Rebuild failed' },
        { action: `/api/evals/${id}/re-evaluate`, label: 'Re-evaluate' },
      ];
      const account = accountView(request, reply, config);
      const actions = await actionsFor(request, overview.project, buttons, account);
      const body = html`${actions}${renderEvalBody(overview, jobs, { temporalUi, all, liveUrl })}`;
      return sendPage(reply, { title: `Eval #${id} · ${overview.project} · harmonia-ci`, body, temporalUi, account });
    },
  );

  app.get<{ Params: { id: string; '*': string } }>(
    '/ci/evals/:id/jobs/*',
    {
      schema: {
        // One job of an eval: state, meta (description, maintainers, license, limits), build, constituents.
        response: htmlResponse,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const attr = request.params['*'];
      const overview = /^\d{1,18}$/.test(id) ? await readEvalOverview(app.db, id) : undefined;
      if (!overview || !(await app.access.visibility(request)).project(overview.project)) return notFound(reply, `eval ${id}`, temporalUi);
      // PostgreSQL text holds no NUL: such a name is no job.
      const job = attr.includes('\0') ? undefined : (await readEvalJobs(app.db, id, { attr })).find((j) => j.attr === attr);
      if (!job) return notFound(reply, `job ${attr} of eval ${id}`, temporalUi);
      const body = renderJobBody(overview, job);
      return sendPage(reply, { title: `${attr} · eval #${id} · harmonia-ci`, body, temporalUi, account: accountView(request, reply, config) });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/ci/builds/:id',
    {
      schema: {
        // One build by build id or derivation hash part, with its live log tail.
        response: htmlResponse,
      },
    },
    async (request, reply) => {
      const page = await readBuildPage(app.db, request.params.id);
      if (!page || !(await app.access.derivationVisible(request, page.drvPath))) return notFound(reply, `build ${request.params.id}`, temporalUi);
      const version = await readBuildLogVersion(app.db, page.drvPath);
      const running = page.build !== null && !FINAL_BUILD_STATUSES.includes(page.build.status);
      const hash = page.drvPath.slice(page.drvPath.lastIndexOf('/') + 1, page.drvPath.lastIndexOf('/') + 33);
      const liveUrl = running ? `/ci/builds/${hash}/log/events?v=${encodeURIComponent(`${version.buildChangedAt ?? ''}|${version.logChangedAt ?? ''}`)}` : undefined;
      const status = page.build?.status;
      const buttons: ActionButton[] = [
        ...(status && (REBUILDABLE.includes(status) || status === 'dep-failed') ? [{ action: `/api/builds/${hash}/rebuild`, label: 'Rebuild' }] : []),
        ...(status === 'pending' ? [{ action: `/api/builds/${hash}/cancel`, label: 'Cancel' }] : []),
      ];
      const account = accountView(request, reply, config);
      const latest = page.evals[0]?.project;
      const actions = latest ? await actionsFor(request, latest, buttons, account) : null;
      const body = html`${actions}${renderBuildBody(page, { temporalUi, liveUrl, fullLogHref: await fullLogHref(cache, page) })}`;
      return sendPage(reply, { title: `${page.name} · build · harmonia-ci`, body, temporalUi, account });
    },
  );

  // Every project with its newest eval.
  app.get('/ci/projects', { schema: { response: htmlResponse } }, async (request, reply) => {
    const visible = await app.access.visibility(request);
    const body = renderProjectsBody((await listProjects(app.db)).filter((p) => visible.project(p.name)));
    return sendPage(reply, { title: 'Projects · harmonia-ci', body, temporalUi, account: accountView(request, reply, config) });
  });

  app.get<{ Params: { owner: string; repo: string; '*': string } }>(
    '/ci/projects/:owner/:repo/jobs/*',
    {
      schema: {
        // One attribute across the project's evals, newest first: status, duration, commit, build; since when it fails.
        response: htmlResponse,
      },
    },
    async (request, reply) => {
      const name = `${request.params.owner}/${request.params.repo}`;
      const attr = request.params['*'];
      const history = attr !== '' && (await app.access.visibility(request)).project(name) ? await readJobHistory(app.db, name, attr) : undefined;
      if (!history) return notFound(reply, `job ${attr} in project ${name}`, temporalUi);
      const body = renderJobHistoryBody(history);
      return sendPage(reply, { title: `${attr} · ${name} · harmonia-ci`, body, temporalUi, account: accountView(request, reply, config) });
    },
  );

  // Project names hold a slash (`owner/repo`): the rest of the path is the name, encoded or not.
  app.get<{ Params: { '*': string }; Querystring: { before?: string } }>(
    '/ci/projects/*',
    {
      schema: {
        // One project: its refs with their latest evals, and its recent evals.
        querystring: { type: 'object', properties: { before: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
        response: htmlResponse,
      },
    },
    async (request, reply) => {
      const name = request.params['*'].replace(/\/+$/, '');
      if (name === '') return reply.redirect('/ci/projects', 302);
      const project = (await app.access.visibility(request)).project(name) ? await readProjectPage(app.db, name) : undefined;
      if (!project) return notFound(reply, `project ${name}`, temporalUi);
      const evals = await listEvalPage(app.db, { limit: EVALS_PER_PAGE, project: name, before: request.query.before });
      const base = projectHref(name);
      const account = accountView(request, reply, config);
      const held = await app.access.permissionOnProject(request, name);
      const admin = account && 'csrf' in account && includes(held, 'admin') ? { csrf: account.csrf } : undefined;
      const settings = admin ? renderProjectSettings(project, admin.csrf) : null;
      const body = html`${renderProjectBody(project, evals, {
        href: (before) => `${base}?before=${encodeURIComponent(before)}`,
        newest: request.query.before ? base : null,
      })}${renderDeploymentsPanel(await listProjectDeployments(app.db, name), admin?.csrf)}${renderAuditPanel(await listAudit(app.db, { project: name, limit: AUDIT_ENTRIES }), {
        showRemote: includes(held, 'admin'),
      })}${settings}`;
      return sendPage(reply, { title: `${name} · harmonia-ci`, body, temporalUi, account });
    },
  );
}
