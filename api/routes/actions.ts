/**
 * Actions over HTTP: cancel an eval or a build, rebuild a build, rebuild an eval's failures,
 * evaluate a ref again. Each is checked against the caller's right on the project, sent as the
 * same Temporal signal `harmonia-ci cancel|rebuild|rebuild-failed|re-evaluate` sends (definitions
 * in workflows/definitions.ts), and written to the audit log. A form post from the dashboard
 * (with its CSRF token) is answered with a redirect back to the page, which updates in place.
 */
import type { SignalDefinition } from '@temporalio/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { buildHashPart, listEvals, listNodes, readBuild, readEval, type BuildDetail } from '../../queries/index.ts';
import {
  approveSignal,
  buildWorkflowId,
  cancelSignal,
  deployWorkflowId,
  evalWorkflowId,
  rebuildFailedSignal,
  rebuildSignal,
  reEvaluateSignal,
  refWorkflowId,
} from '../../workflows/definitions.ts';
import { signalDrain } from '../../temporal/drain.ts';
import { finishAction } from '../auth/act.ts';
import { principalName, type Principal } from '../auth/principal.ts';
import { projectHref } from '../views/format.ts';
import { csrfGuard } from '../auth/sessions.ts';
import { errorResponses } from '../error-handler.ts';
import { BadRequestError, ConflictError, NotFoundError } from '../errors.ts';

/** Build statuses a rebuild applies to (a dep-failed build is rebuilt through its root cause). */
export const REBUILDABLE = ['failed', 'timed-out', 'cancelled'];
const FINISHED_EVAL = ['succeeded', 'failed', 'cancelled', 'skipped'];

const evalParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } } as const;
const buildParams = { type: 'object', required: ['build'], properties: { build: { type: 'string', minLength: 1 } } } as const;
const answer = { 200: { type: 'object', required: ['message'], properties: { message: { type: 'string' } } }, ...errorResponses };

/** Registers the action routes. */
export async function actionRoutes(app: FastifyInstance): Promise<void> {
  const signal = async <Args extends unknown[]>(workflowId: string, definition: SignalDefinition<Args>, args: Args, whenMissing: string): Promise<void> => {
    try {
      await app.temporal.workflow.getHandle(workflowId).signal(definition, ...args);
    } catch (error) {
      if ((error as Error).name === 'WorkflowNotFoundError') throw new ConflictError(`no running workflow ${workflowId}: ${whenMissing}`);
      throw error;
    }
  };

  const requireEval = async (request: FastifyRequest, id: string) => {
    const ev = await readEval(app.db, id);
    if (!ev) throw new NotFoundError(`no eval ${id}`);
    const principal = await app.access.requireOnProject(request, ev.project, 'write');
    return { ev, principal };
  };

  app.post<{ Params: { id: string } }>('/api/evals/:id/cancel', { schema: { params: evalParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
    const { ev, principal } = await requireEval(request, request.params.id);
    const active = ev.counts.pending + ev.counts.building + ev.counts.uploading;
    if (FINISHED_EVAL.includes(ev.status) && active === 0) throw new ConflictError(`eval ${ev.id} has already ended (${ev.status}); nothing to cancel`);
    await signal(evalWorkflowId(ev.id), cancelSignal, [], 'it has already ended');
    const message = `asked eval ${ev.id} to cancel; builds no other eval wants are withdrawn, running ones finish`;
    return finishAction(request, reply, principal, { action: 'eval.cancel', target: `eval ${ev.id}`, project: ev.project, message, page: `/ci/evals/${ev.id}` });
  });

  app.post<{ Params: { id: string } }>('/api/evals/:id/rebuild-failed', { schema: { params: evalParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
    const { ev, principal } = await requireEval(request, request.params.id);
    const [latest] = (await listEvals(app.db, { limit: 20, project: ev.project, ref: ev.ref })).filter((e) => e.status !== 'skipped');
    if (latest && latest.id !== ev.id) throw new ConflictError(`eval ${ev.id} is not the latest of ${ev.project} ${ev.ref} (eval ${latest.id} is); rebuild-failed acts on a ref's latest eval`);
    const failed = ev.counts.failed + ev.counts['timed-out'] + ev.counts.cancelled + ev.counts['dep-failed'];
    if (failed === 0) throw new ConflictError(`eval ${ev.id} has no failed builds; nothing to rebuild`);
    await signal(refWorkflowId(ev.project, ev.ref), rebuildFailedSignal, [], `push to ${ev.ref} again to start it`);
    const message = `rebuilding ${failed} failed build(s) of eval ${ev.id}`;
    return finishAction(request, reply, principal, { action: 'eval.rebuild-failed', target: `eval ${ev.id}`, project: ev.project, message, page: `/ci/evals/${ev.id}` });
  });

  app.post<{ Params: { id: string } }>('/api/evals/:id/re-evaluate', { schema: { params: evalParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
    const { ev, principal } = await requireEval(request, request.params.id);
    await signal(refWorkflowId(ev.project, ev.ref), reEvaluateSignal, [], `${ev.project} has no ref ${ev.ref} with an eval to repeat`);
    const message = `asked ${refWorkflowId(ev.project, ev.ref)} to evaluate its latest commit again`;
    return finishAction(request, reply, principal, { action: 'eval.re-evaluate', target: `${ev.project} ${ev.ref}`, project: ev.project, message, page: `/ci/evals/${ev.id}` });
  });

  const requireBuild = async (build: string): Promise<BuildDetail> => {
    const hash = buildHashPart(build);
    if (!hash) throw new BadRequestError(`"${build}" is not a derivation: give its store path, its hash part, or build/<hash>`);
    const detail = await readBuild(app.db, hash);
    if (!detail) throw new NotFoundError(`no build of ${build}`);
    return detail;
  };

  app.post<{ Params: { build: string } }>('/api/builds/:build/rebuild', { schema: { params: buildParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
    const build = await requireBuild(request.params.build);
    if (!(await app.access.derivationVisible(request, build.drvPath))) throw new NotFoundError(`no build of ${request.params.build}`);
    // A dep-failed build is rebuilt by rebuilding the failure at its root, which retries both.
    const target = build.status === 'dep-failed' && build.rootCause ? await requireBuild(build.rootCause.drvPath) : build;
    if (!target.latest) throw new ConflictError(`no ref's latest eval includes ${target.drvPath}; re-evaluate the ref to build it again`);
    const principal = await app.access.requireOnProject(request, target.latest.project, 'write');
    if (!REBUILDABLE.includes(target.status)) throw new ConflictError(`${target.name} is ${target.status}; only failed, timed-out or cancelled builds are rebuilt`);
    const { project, ref, evalId } = target.latest;
    await signal(refWorkflowId(project, ref), rebuildSignal, [target.drvPath], `push to ${ref} again to start it`);
    const message = `rebuilding ${target.name} in eval ${evalId} (${project} ${ref})`;
    const page = `/ci/builds/${buildHashPart(build.drvPath)}`;
    return finishAction(request, reply, principal, { action: 'build.rebuild', target: target.drvPath, project, message, page });
  });

  app.post<{ Params: { build: string } }>('/api/builds/:build/cancel', { schema: { params: buildParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
    const build = await requireBuild(request.params.build);
    // Cancelling withdraws the build for every eval that wants it: each of their projects must allow it.
    const { rows } = await app.db.query<{ name: string }>(
      `SELECT DISTINCT p.name FROM build_jobs b JOIN evaluation_builds eb ON eb.build_id = b.id
         JOIN evaluations ev ON ev.id = eb.eval_id JOIN projects p ON p.id = ev.project_id WHERE b.drv_path = $1 ORDER BY p.name`,
      [build.drvPath],
    );
    if (rows.length === 0) throw new NotFoundError(`no build of ${request.params.build}`);
    let principal: Principal | undefined;
    for (const { name } of rows) principal = await app.access.requireOnProject(request, name, 'write');
    await signal(buildWorkflowId(build.drvPath), cancelSignal, [], 'the build has ended or was never started');
    const message = `asked ${buildWorkflowId(build.drvPath)} to cancel; it is withdrawn unless it is already building`;
    const page = `/ci/builds/${buildHashPart(build.drvPath)}`;
    return finishAction(request, reply, principal!, { action: 'build.cancel', target: build.drvPath, project: rows[0]!.name, message, page });
  });

  const nodeParams = { type: 'object', required: ['node'], properties: { node: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } } } as const;
  for (const [path, draining] of [['drain', true], ['undrain', false]] as const) {
    app.post<{ Params: { node: string } }>(`/api/nodes/:node/${path}`, { schema: { params: nodeParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
      const principal = app.access.requireOperator(request);
      const name = request.params.node;
      if (!(await listNodes(app.db)).some((n) => n.name === name)) throw new NotFoundError(`no builder named ${name}`);
      await signalDrain(app.temporal, name, draining);
      const message = draining ? `${name}: draining; running builds finish, no new ones are taken` : `${name}: takes builds again`;
      return finishAction(request, reply, principal, { action: `node.${path}`, target: name, message, page: '/ci/nodes' });
    });
  }

  // A deployment awaiting approval: the `approve` signal `temporal workflow signal … --name approve` sends, naming who approved.
  const deploymentParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } } as const;
  app.post<{ Params: { id: string } }>('/api/deployments/:id/approve', { schema: { params: deploymentParams, response: answer }, preHandler: csrfGuard }, async (request, reply) => {
    const { rows } = await app.db.query<{ project: string; environment: string; status: string; store_path: string }>(
      'SELECT p.name AS project, d.environment, d.status, d.store_path FROM deployments d JOIN projects p ON p.id = d.project_id WHERE d.id = $1',
      [request.params.id],
    );
    const deployment = rows[0];
    if (!deployment) throw new NotFoundError(`no deployment ${request.params.id}`);
    const principal = await app.access.requireOnProject(request, deployment.project, 'admin');
    if (deployment.status !== 'awaiting-approval') throw new ConflictError(`deployment ${request.params.id} is ${deployment.status}; only one awaiting approval is approved`);
    const workflowId = deployWorkflowId(deployment.project, deployment.environment);
    await signal(workflowId, approveSignal, [{ by: principalName(principal), deploymentId: request.params.id }], 'the deployment is no longer waiting');
    const message = `approved deployment ${request.params.id} of ${deployment.store_path} to ${deployment.environment}`;
    const page = `${projectHref(deployment.project)}#deployment-${request.params.id}`;
    return finishAction(request, reply, principal, { action: 'deployment.approve', target: `${deployment.environment} ${deployment.store_path}`, project: deployment.project, message, page });
  });
}
