/**
 * JSON routes for operators: recent evals, one eval, one build and its live log tail, the builder
 * nodes. `harmonia-ci status|logs|nodes|rebuild` use them when the command line has no database
 * of its own (the embedded PostgreSQL of `harmonia-ci dev` admits only the dev process).
 */
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../error-handler.ts';
import { BadRequestError, NotFoundError } from '../errors.ts';
import { buildHashPart, listAudit, listEvals, listNodes, readBuild, readBuildLog, readEval, type EvalFilter } from '../../queries/index.ts';

const STATUSES = ['pending', 'building', 'uploading', 'succeeded', 'failed', 'dep-failed', 'cancelled', 'timed-out', 'failed-with-output'];
const string = { type: 'string' } as const;
const nullableString = { type: ['string', 'null'] } as const;
const integer = { type: 'integer' } as const;

const countsSchema = {
  type: 'object',
  required: ['total', ...STATUSES],
  properties: Object.fromEntries(['total', ...STATUSES].map((key) => [key, integer])),
};

const evalProperties = {
  id: string,
  project: string,
  ref: string,
  commit: string,
  status: string,
  event: string,
  error: nullableString,
  createdAt: string,
  startedAt: nullableString,
  finishedAt: nullableString,
  jobCount: integer,
  attrErrors: integer,
  cachedJobs: integer,
  counts: countsSchema,
};
const evalSchema = { type: 'object', required: Object.keys(evalProperties), properties: evalProperties };

const buildProperties = {
  drvPath: string,
  name: string,
  system: string,
  status: string,
  node: nullableString,
  attempts: integer,
  startedAt: nullableString,
  finishedAt: nullableString,
  seconds: { type: ['number', 'null'] },
  error: nullableString,
  rootCause: {
    type: ['object', 'null'],
    required: ['drvPath', 'name'],
    properties: { drvPath: string, name: string },
  },
};

const evalDetailSchema = {
  type: 'object',
  required: [...Object.keys(evalProperties), 'jobs', 'builds'],
  properties: {
    ...evalProperties,
    jobs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['attr', 'drvPath', 'error', 'build', 'status', 'outputs'],
        properties: {
          attr: string,
          drvPath: nullableString,
          error: nullableString,
          build: nullableString,
          status: string,
          outputs: { type: 'object', additionalProperties: string },
          // Aggregate jobs only.
          constituents: {
            type: 'array',
            items: { type: 'object', required: ['attr', 'drvPath', 'state'], properties: { attr: nullableString, drvPath: string, state: string } },
          },
          failedConstituents: { type: 'array', items: string },
        },
      },
    },
    builds: { type: 'array', items: { type: 'object', required: Object.keys(buildProperties), properties: buildProperties } },
  },
};

/** A build product, with the URL it downloads from. */
export const productSchema = {
  type: 'object',
  required: ['type', 'subtype', 'path', 'name', 'url'],
  properties: {
    type: string,
    subtype: string,
    path: string,
    name: string,
    url: string,
    defaultPath: string,
    fileSize: integer,
    sha256: string,
  },
};

const buildDetailSchema = {
  type: 'object',
  required: [...Object.keys(buildProperties), 'workflowId', 'latest'],
  properties: {
    ...buildProperties,
    workflowId: nullableString,
    latest: {
      type: ['object', 'null'],
      required: ['evalId', 'project', 'ref'],
      properties: { evalId: string, project: string, ref: string },
    },
    products: { type: 'array', items: productSchema },
  },
};

const logSchema = {
  type: 'object',
  required: ['drvPath', 'name', 'status', 'tail', 'updatedAt'],
  properties: { drvPath: string, name: string, status: string, tail: nullableString, updatedAt: nullableString },
};

const nodeProperties = {
  name: string,
  systems: { type: 'array', items: string },
  features: { type: 'array', items: string },
  maxJobs: integer,
  draining: { type: 'boolean' },
  version: nullableString,
  registeredAt: string,
  lastSeenAt: string,
  secondsSinceSeen: { type: 'number' },
  running: integer,
};

const buildParams = { type: 'object', required: ['build'], properties: { build: string } } as const;

function hashOf(build: string): string {
  const hash = buildHashPart(build);
  if (!hash) throw new BadRequestError(`"${build}" is not a derivation: give its store path, its hash part, or build/<hash>`);
  return hash;
}

/** Registers the operator routes under /api. */
export async function opsRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: EvalFilter }>(
    '/api/evals',
    {
      // Recent evaluations, newest first, with their build counts.
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 }, project: string, ref: string, commit: string },
        },
        response: { 200: { type: 'array', items: evalSchema }, ...errorResponses },
      },
    },
    async (request) => listEvals(app.db, { ...request.query, hidden: (await app.access.visibility(request)).hidden }),
  );

  app.get<{ Params: { id: string } }>(
    '/api/evals/:id',
    {
      // One evaluation with its jobs and builds.
      schema: {
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]+$' } } },
        response: { 200: evalDetailSchema, ...errorResponses },
      },
    },
    async (request) => {
      const detail = await readEval(app.db, request.params.id);
      if (!detail || !(await app.access.visibility(request)).project(detail.project)) throw new NotFoundError(`no eval ${request.params.id}`);
      return detail;
    },
  );

  app.get<{ Params: { build: string } }>(
    '/api/builds/:build',
    {
      // One build (by derivation hash part) and the latest eval of a ref that includes it.
      schema: {
        params: buildParams,
        response: { 200: buildDetailSchema, ...errorResponses },
      },
    },
    async (request) => {
      const build = await readBuild(app.db, hashOf(request.params.build));
      if (!build || !(await app.access.derivationVisible(request, build.drvPath))) throw new NotFoundError(`no build of ${request.params.build}`);
      return build;
    },
  );

  app.get<{ Params: { build: string } }>(
    '/api/builds/:build/log',
    {
      // The live tail (last 64 KB) of a build log.
      schema: {
        params: buildParams,
        response: { 200: logSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const log = await readBuildLog(app.db, hashOf(request.params.build));
      if (!log || !(await app.access.derivationVisible(request, log.drvPath))) throw new NotFoundError(`no build of ${request.params.build}`);
      return reply.header('cache-control', 'no-store').send(log);
    },
  );

  app.get(
    '/api/nodes',
    {
      // Builder nodes: systems, features, max jobs, running builds, last heartbeat, draining.
      schema: {
        response: { 200: { type: 'array', items: { type: 'object', required: Object.keys(nodeProperties), properties: nodeProperties } }, ...errorResponses },
      },
    },
    async () => listNodes(app.db),
  );

  const auditProperties = { at: string, actor: string, via: string, action: string, target: string, project: nullableString, remote: string, outcome: string };
  app.get<{ Querystring: { project?: string; limit: number } }>(
    '/api/audit',
    {
      // The audit log, newest first: every project's for operators, one project's for its admins.
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { project: string, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } } },
        response: { 200: { type: 'array', items: { type: 'object', required: Object.keys(auditProperties), properties: auditProperties } }, ...errorResponses },
      },
    },
    async (request) => {
      const { project, limit } = request.query;
      if (project === undefined) app.access.requireOperator(request);
      else await app.access.requireOnProject(request, project, 'admin');
      return listAudit(app.db, { project, limit });
    },
  );
}
