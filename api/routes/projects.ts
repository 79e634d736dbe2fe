/**
 * `/api/projects`: the repositories discovered on the forges and which of them are enabled
 * projects, with their PR trust, shares and poll interval. The same operations as
 * `harmonia-ci projects list|sync|enable|disable`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { writeAudit } from '../auth/audit.ts';
import { principalName, type Principal } from '../auth/principal.ts';
import { csrfGuard } from '../auth/sessions.ts';
import { isFormPost } from '../auth/act.ts';
import { projectHref } from '../views/format.ts';
import type { ServerConfig } from '../../config/types.ts';
import { parseDuration } from '../../config/units.ts';
import { ForgeNotConfiguredError, ProjectError } from '../../forges/errors.ts';
import { disableProject, enableProject, parsePrTrust, syncRepositories, type ProjectDeps } from '../../forges/projects.ts';
import { listRepositories } from '../../queries/repositories.ts';
import type { ProjectRepository } from '../../forges/store.ts';
import type { ForgeKind, Forges } from '../../forges/types.ts';
import { errorResponses } from '../error-handler.ts';
import { BadRequestError, NotFoundError } from '../errors.ts';
import { readJobHistory } from '../../queries/job-history.ts';

export interface ProjectRoutesOptions {
  config: ServerConfig;
  forges: Forges;
}

const listingSchema = {
  type: 'object',
  required: ['repository', 'forge', 'project', 'enabled', 'prTrust', 'schedulingShares', 'pollIntervalSeconds', 'cloneUrl', 'defaultBranch'],
  properties: {
    repository: { type: 'string' },
    forge: { type: 'string', enum: ['github', 'gitea'] },
    project: { type: ['string', 'null'] },
    enabled: { type: 'boolean' },
    prTrust: { type: ['string', 'null'], enum: ['everyone', 'collaborators', 'none', null] },
    schedulingShares: { type: ['integer', 'null'] },
    pollIntervalSeconds: { type: ['integer', 'null'] },
    cloneUrl: { type: 'string' },
    defaultBranch: { type: 'string' },
  },
} as const;

const projectSchema = {
  type: 'object',
  required: ['project', 'repository', 'forge', 'enabled', 'prTrust', 'pollIntervalSeconds'],
  properties: {
    project: { type: 'string' },
    repository: { type: 'string' },
    forge: { type: 'string' },
    enabled: { type: 'boolean' },
    prTrust: { type: 'string' },
    pollIntervalSeconds: { type: ['integer', 'null'] },
  },
} as const;

const historyEntrySchema = {
  type: 'object',
  required: ['evalId', 'commit', 'ref', 'evalCreatedAt', 'state', 'drvPath', 'seconds', 'evalError'],
  properties: {
    evalId: { type: 'string' },
    commit: { type: 'string' },
    ref: { type: 'string' },
    evalCreatedAt: { type: 'string' },
    state: { type: 'string' },
    drvPath: { type: ['string', 'null'] },
    seconds: { type: ['number', 'null'] },
    evalError: { type: ['string', 'null'] },
  },
} as const;

const jobHistorySchema = {
  type: 'object',
  required: ['project', 'attr', 'entries', 'failingSince'],
  properties: {
    project: { type: 'string' },
    attr: { type: 'string' },
    entries: { type: 'array', items: historyEntrySchema },
    failingSince: { anyOf: [historyEntrySchema, { type: 'null' }] },
  },
} as const;

const repoParams = {
  type: 'object',
  required: ['owner', 'repo'],
  properties: { owner: { type: 'string', minLength: 1 }, repo: { type: 'string', minLength: 1 } },
} as const;

interface EnableBody {
  _csrf?: string;
  forge?: ForgeKind;
  name?: string;
  prTrust?: string;
  schedulingShares?: number;
  /** A duration ("5m", "1h") or null to stop polling. */
  pollInterval?: string | null;
}

/** Registers the project routes. */
export async function projectRoutes(app: FastifyInstance, { config, forges }: ProjectRoutesOptions): Promise<void> {
  const deps = (): ProjectDeps => ({
    pool: app.db,
    forges,
    client: app.temporal,
    publicUrl: config.api.publicUrl,
    defaults: { prTrust: config.projects.prTrust, schedulingShares: config.projects.schedulingShares },
  });

  app.get(
    '/api/projects',
    { schema: { description: 'Known repositories and their projects.', response: { 200: { type: 'array', items: listingSchema }, ...errorResponses } } },
    async (request) => {
      const visible = await app.access.visibility(request);
      return (await listRepositories(app.db)).filter((r) => {
        const [owner = '', name = ''] = r.repository.split('/');
        return visible.repository({ forge: r.forge, owner, name });
      });
    },
  );

  app.get<{ Params: { owner: string; repo: string; '*': string } }>(
    '/api/projects/:owner/:repo/jobs/*',
    {
      // One attribute across the project's evals, newest first (at most 50), and the eval since which it fails.
      schema: {
        response: { 200: jobHistorySchema, ...errorResponses },
      },
    },
    async (request) => {
      const name = `${request.params.owner}/${request.params.repo}`;
      const attr = request.params['*'];
      const history = attr !== '' && (await app.access.visibility(request)).project(name) ? await readJobHistory(app.db, name, attr) : undefined;
      if (!history) throw new NotFoundError(`no job ${attr} in project ${name}`);
      return history;
    },
  );

  app.post(
    '/api/projects/sync',
    {
      preHandler: csrfGuard,
      schema: {
        description: 'Discover the repositories the configured forges grant access to (operators).',
        response: { 200: { type: 'object', required: ['discovered'], properties: { discovered: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const principal = app.access.requireOperator(request);
      const discovered = await userErrors(() => syncRepositories(deps()));
      await audit(request, principal, { action: 'projects.sync', target: 'forges', outcome: `${discovered} discovered` });
      return { discovered };
    },
  );

  app.post<{ Params: { owner: string; repo: string }; Body: EnableBody | undefined }>(
    '/api/projects/:owner/:repo/enable',
    {
      preHandler: csrfGuard,
      // Enables (or updates) the project of a repository.
      schema: {
        params: repoParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            forge: { type: 'string', enum: ['github', 'gitea'] },
            name: { type: 'string', minLength: 1 },
            prTrust: { type: 'string', enum: ['all', 'everyone', 'collaborators', 'none'] },
            schedulingShares: { type: 'integer', minimum: 1 },
            pollInterval: { type: ['string', 'null'] },
            // The dashboard's settings form posts its CSRF token along.
            _csrf: { type: 'string' },
          },
        },
        response: { 200: projectSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { _csrf: _token, ...body } = request.body ?? {};
      // A form's empty poll interval field means no polling.
      if (isFormPost(request) && body.pollInterval === '') body.pollInterval = null;
      const repository = { owner: request.params.owner, name: request.params.repo, forge: body.forge };
      const principal = await app.access.requireOnRepository(request, repository, 'admin');
      const project = await userErrors(() =>
        enableProject(deps(), {
          repository: `${request.params.owner}/${request.params.repo}`,
          ...(body.forge ? { forge: body.forge } : {}),
          ...(body.name ? { name: body.name } : {}),
          ...(body.prTrust ? { prTrust: parsePrTrust(body.prTrust) } : {}),
          ...(body.schedulingShares ? { schedulingShares: body.schedulingShares } : {}),
          ...(body.pollInterval === undefined ? {} : { pollIntervalMs: pollInterval(body.pollInterval) }),
        }),
      );
      await audit(request, principal, { action: 'project.enable', target: `${project.owner}/${project.name}`, project: project.projectName, outcome: JSON.stringify(body) });
      return isFormPost(request) ? reply.redirect(projectHref(project.projectName), 303) : describe(project);
    },
  );

  app.post<{ Params: { owner: string; repo: string } }>(
    '/api/projects/:owner/:repo/disable',
    // Disables the project of a repository.
    { schema: { params: repoParams, response: { 200: projectSchema, ...errorResponses } }, preHandler: csrfGuard },
    async (request, reply) => {
      const principal = await app.access.requireOnRepository(request, { owner: request.params.owner, name: request.params.repo }, 'admin');
      const project = await userErrors(() => disableProject(deps(), `${request.params.owner}/${request.params.repo}`));
      await audit(request, principal, { action: 'project.disable', target: `${project.owner}/${project.name}`, project: project.projectName, outcome: 'disabled' });
      return isFormPost(request) ? reply.redirect(projectHref(project.projectName), 303) : describe(project);
    },
  );

  const audit = (request: FastifyRequest, principal: Principal, entry: { action: string; target: string; project?: string | null; outcome: string }) =>
    writeAudit(app.db, request, { actor: principalName(principal), via: principal.via, ...entry });
}

function pollInterval(value: string | null): number | null {
  if (value === null) return null;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 60_000) throw new BadRequestError('pollInterval: expected a duration of at least 1m, such as "5m", or null');
  return ms;
}

function describe(project: ProjectRepository) {
  return {
    project: project.projectName,
    repository: `${project.owner}/${project.name}`,
    forge: project.forge,
    enabled: project.enabled,
    prTrust: project.prTrust,
    pollIntervalSeconds: project.pollIntervalMs === null ? null : Math.round(project.pollIntervalMs / 1000),
  };
}

/** Mistakes of the caller become 400s with their message; forge and database failures stay 5xx. */
async function userErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ProjectError || error instanceof ForgeNotConfiguredError) throw new BadRequestError(error.message);
    throw error;
  }
}
