/**
 * `POST /webhook/github` and `POST /webhook/gitea`. A request is verified (HMAC-SHA256 of the raw
 * body with the configured secret: 401 when missing or wrong), parsed, matched to an enabled
 * project (200 "ignored" otherwise), stored once per delivery id and answered 202 before any
 * work: the delivery dispatcher then signals the ref workflow, retrying while Temporal is down.
 * When PostgreSQL cannot be reached the delivery is not stored and the answer is 503 with
 * `Retry-After`, so the forge lists it as failed and people can redeliver it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Webhooks } from '@octokit/webhooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ForgesConfig } from '../../config/types.ts';
import { pinCommentHead, PullRequestHeadUnavailableError } from '../../forges/comments.ts';
import { forgetInstallation, findWebhookProject, recordDelivery, upsertRepositories } from '../../forges/store.ts';
import type { ForgeKind, Forges } from '../../forges/types.ts';
import { intentRef, parseForgeEvent } from '../../forges/webhooks.ts';
import { errorResponses } from '../error-handler.ts';
import { isDatabaseUnreachable } from '../../db/outage.ts';
import { BadRequestError, NotFoundError, RetryLaterError, UnauthorizedError } from '../errors.ts';

export interface WebhookRoutesOptions {
  config: ForgesConfig;
  forges: Forges;
}

/** What a 503 asks the forge (or whoever redelivers) to wait, in seconds. */
const RETRY_AFTER_S = 60;

/** GitHub caps payloads at 25 MB (Gitea's are smaller); a larger body is refused (413) before it is read. */
export const WEBHOOK_BODY_LIMIT = 25 * 1024 * 1024;

const replySchema = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['accepted', 'duplicate', 'ignored'] },
    reason: { type: 'string' },
  },
} as const;

/** Registers the webhook routes; accepted deliveries go to the dispatcher (api/plugins/deliveries.ts). */
export async function webhookRoutes(app: FastifyInstance, { config, forges }: WebhookRoutesOptions): Promise<void> {
  // The signature covers the exact bytes: keep the body as the string that arrived.
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, done) => done(null, body));

  const schema = (forge: string) => ({
    description: `A ${forge} webhook delivery (push, pull_request, issue_comment${forge === 'GitHub' ? ', installation' : ''}).`,
    body: { type: 'string' },
    response: { 200: replySchema, 202: replySchema, ...errorResponses },
  });

  // Unauthenticated requests are turned away before their body is read (onRequest runs before parsing).
  const githubSigned = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (!config.github?.webhookSecretFile) throw new NotFoundError('GitHub webhooks are not configured: set forges.github.webhook-secret-file');
    if (!header(request, 'x-hub-signature-256')) throw new UnauthorizedError('missing X-Hub-Signature-256: set the webhook secret on GitHub');
  };
  const giteaSigned = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (!config.gitea?.webhookSecretFile) throw new NotFoundError('Gitea webhooks are not configured: set forges.gitea.webhook-secret-file');
    if (!header(request, 'x-gitea-signature') && !header(request, 'x-forgejo-signature')) {
      throw new UnauthorizedError('missing X-Gitea-Signature: set the webhook secret on Gitea');
    }
  };

  app.post('/webhook/github', { schema: schema('GitHub'), bodyLimit: WEBHOOK_BODY_LIMIT, onRequest: githubSigned }, async (request, reply) => {
    const secretFile = config.github!.webhookSecretFile!;
    const signature = header(request, 'x-hub-signature-256')!;
    const body = rawBody(request);
    if (!(await new Webhooks({ secret: await secretFile.read() }).verify(body, signature))) {
      throw new UnauthorizedError('X-Hub-Signature-256 does not match: the webhook secret on GitHub differs from ours');
    }
    const answer = await receive(app, forges, 'github', header(request, 'x-github-event'), header(request, 'x-github-delivery'), body);
    if (answer.status === 'accepted') app.deliveries.kick();
    return reply.code(answer.status === 'ignored' ? 200 : 202).send(answer);
  });

  app.post('/webhook/gitea', { schema: schema('Gitea'), bodyLimit: WEBHOOK_BODY_LIMIT, onRequest: giteaSigned }, async (request, reply) => {
    const secretFile = config.gitea!.webhookSecretFile!;
    const signature = (header(request, 'x-gitea-signature') ?? header(request, 'x-forgejo-signature'))!;
    const body = rawBody(request);
    if (!hmacMatches(await secretFile.read(), body, signature)) {
      throw new UnauthorizedError('X-Gitea-Signature does not match: the webhook secret on Gitea differs from ours');
    }
    const event = header(request, 'x-gitea-event') ?? header(request, 'x-forgejo-event');
    const answer = await receive(app, forges, 'gitea', event, header(request, 'x-gitea-delivery') ?? header(request, 'x-forgejo-delivery'), body);
    if (answer.status === 'accepted') app.deliveries.kick();
    return reply.code(answer.status === 'ignored' ? 200 : 202).send(answer);
  });
}

type Answer = { status: 'accepted' | 'duplicate' } | { status: 'ignored'; reason: string };

async function receive(...args: Parameters<typeof receiveDelivery>): Promise<Answer> {
  try {
    return await receiveDelivery(...args);
  } catch (error) {
    if (error instanceof PullRequestHeadUnavailableError) throw new RetryLaterError(error.message, RETRY_AFTER_S, { cause: error });
    if (!isDatabaseUnreachable(error)) throw error;
    throw new RetryLaterError(
      'cannot store the webhook delivery: the database (PostgreSQL) is unreachable; redeliver it once GET /healthz reports the database ok',
      RETRY_AFTER_S,
      { cause: error },
    );
  }
}

async function receiveDelivery(
  app: FastifyInstance,
  forges: Forges,
  forge: ForgeKind,
  event: string | undefined,
  deliveryId: string | undefined,
  body: string,
): Promise<Answer> {
  if (!event) throw new BadRequestError(`missing the ${forge === 'github' ? 'X-GitHub-Event' : 'X-Gitea-Event'} header`);
  if (!deliveryId) throw new BadRequestError(`missing the ${forge === 'github' ? 'X-GitHub-Delivery' : 'X-Gitea-Delivery'} header`);
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    throw new BadRequestError('the body is not JSON: set the webhook content type to application/json');
  }
  if (event === 'ping') return { status: 'ignored', reason: 'pong' };

  const parsed = parseForgeEvent(forge, event, payload);
  if (parsed.kind === 'ignored') return { status: 'ignored', reason: parsed.reason };
  if (parsed.kind === 'installation') {
    await installationChanged(app, forges, parsed);
    return { status: 'accepted' };
  }
  const project = await findWebhookProject(app.db, forge, parsed.repository);
  if (!project?.enabled) {
    return { status: 'ignored', reason: `${parsed.repository.owner}/${parsed.repository.name} is not an enabled project` };
  }
  if (parsed.intent.kind !== 'push' && project.prTrust === 'none') {
    return { status: 'ignored', reason: `pull requests of ${project.projectName} are not built (pr-trust none)` };
  }
  let intent = parsed.intent;
  if (intent.kind === 'comment') {
    const pinned = await pinCommentHead(app.db, forges, forge, project, intent, deliveryId);
    if (pinned.kind === 'seen') return { status: 'duplicate' };
    if (pinned.kind === 'stale') return { status: 'ignored', reason: pinned.reason };
    intent = pinned.intent;
  }
  const stored = await recordDelivery(app.db, { forge, deliveryId, event, projectId: project.projectId, ref: intentRef(intent), intent });
  logDelivery(app, forge, event, deliveryId, project.projectName, stored);
  return { status: stored ? 'accepted' : 'duplicate' };
}

/** App installed or repositories added: discover in the background; removed: forget the installation. */
async function installationChanged(
  app: FastifyInstance,
  forges: Forges,
  change: { installationId: number; action: string; removedRepositoryIds: number[] },
): Promise<void> {
  if (change.action === 'deleted' || change.action === 'suspend') {
    await forgetInstallation(app.db, change.installationId);
    return;
  }
  if (change.removedRepositoryIds.length > 0) await forgetInstallation(app.db, change.installationId, change.removedRepositoryIds);
  const github = forges.github;
  if (!github) return;
  void github
    .discover()
    .then((repos) => upsertRepositories(app.db, repos))
    .then((count) => app.log.info({ installation: change.installationId, repositories: count }, 'repositories discovered'))
    .catch((error: Error) => app.log.warn({ err: error }, 'repository discovery after an installation event failed'));
}

function logDelivery(app: FastifyInstance, forge: string, event: string, delivery: string, project: string, stored: boolean): void {
  app.log.info({ forge, event, delivery, project }, stored ? 'webhook delivery accepted' : 'webhook delivery seen before');
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function rawBody(request: FastifyRequest): string {
  if (typeof request.body !== 'string') throw new BadRequestError('expected a JSON body (content type application/json)');
  return request.body;
}

/** Gitea's signature: hex HMAC-SHA256 of the body, compared in constant time. */
export function hmacMatches(secret: string, body: string, signature: string): boolean {
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(signature.replace(/^sha256=/, ''), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
