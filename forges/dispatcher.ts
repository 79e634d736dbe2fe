/**
 * The delivery dispatcher: turns stored webhook deliveries into `push` signals. It runs beside
 * the API (several API processes share the table safely: leases and SKIP LOCKED), keeps the
 * order of deliveries per ref, applies PR trust (which may ask the forge who may push), and
 * retries with backoff while Temporal, PostgreSQL or the forge is down, so an accepted delivery
 * is never lost. Any other failure counts: after MAX_FAILURES the delivery is parked with its
 * error, so it no longer holds back the ref's later deliveries (a redelivery replaces it).
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { isDatabaseUnreachable } from '../db/outage.ts';
import { signalPush } from '../temporal/push.ts';
import { ForgeNotConfiguredError, ForgeRequestError } from './errors.ts';
import { forgePushEvent } from './git-source.ts';
import { findProject, type ProjectRepository } from './store.ts';
import type { Forges } from './types.ts';
import { headPusher, type Intent } from './webhooks.ts';

const PASS_INTERVAL_MS = 2_000;
const BATCH = 20;
const MAX_BACKOFF_MS = 60_000;
/** Failures other than outages before a delivery is parked: with the backoff below, about two minutes. */
export const MAX_FAILURES = 5;
const FAILURE_BACKOFF_MS = 2_000;
const KEEP_FINISHED = '7 days';
const KEEP_PARKED = '30 days';
const PRUNE_EVERY_MS = 10 * 60_000;
const SIGNAL_DEADLINE_MS = 10_000;

export interface DispatcherDeps {
  pool: Pool;
  client: Client;
  forges: Forges;
  log: { warn(fields: object, message: string): void };
}

/** The deps and the dispatcher's stop, aborted so that a signal waiting on an absent Temporal does not hold up shutdown. */
type Running = DispatcherDeps & { stopping: AbortSignal };

export interface DeliveryDispatcher {
  /** Runs a pass soon (after a delivery was stored). */
  kick(): void;
  /** One pass over due deliveries; resolves with how many it handled. */
  runOnce(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

interface DeliveryRow {
  id: string;
  project_id: string;
  ref: string;
  intent: Intent;
  attempts: number;
  failures: number;
}

type Outcome = { status: 'dispatched' } | { status: 'ignored'; reason: string };

export function createDeliveryDispatcher(given: DispatcherDeps): DeliveryDispatcher {
  const stopping = new AbortController();
  const deps: Running = { ...given, stopping: stopping.signal };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let again = false;
  let prunedAt = 0;

  const pass = async (): Promise<number> => {
    let handled = 0;
    do {
      again = false;
      const rows = await claim(deps.pool);
      for (const [index, row] of rows.entries()) {
        handled += 1;
        if ((await deliver(deps, row)) === 'temporal-down') {
          // The others would wait out the same deadline one by one: leave them to a later pass.
          await release(deps.pool, rows.slice(index + 1));
          return handled;
        }
      }
      if (rows.length === BATCH) again = true;
    } while (again);
    if (Date.now() - prunedAt > PRUNE_EVERY_MS) {
      prunedAt = Date.now();
      await deps.pool.query(
        `DELETE FROM forge_deliveries WHERE (status IN ('dispatched', 'ignored') AND finished_at < now() - interval '${KEEP_FINISHED}')
            OR (status = 'parked' AND finished_at < now() - interval '${KEEP_PARKED}')`,
      );
    }
    return handled;
  };
  const runOnce = (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = pass().finally(() => {
      running = undefined;
    });
    return running;
  };
  const guarded = (): void => {
    runOnce().catch((error: Error) => deps.log.warn({ err: error }, 'webhook delivery dispatch failed; retrying'));
  };

  return {
    kick: () => setImmediate(guarded),
    runOnce,
    start() {
      timer ??= setInterval(guarded, PASS_INTERVAL_MS);
      timer.unref();
      guarded();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      stopping.abort();
      await running?.catch(() => undefined);
    },
  };
}

/** The oldest pending delivery of each ref, if due and not held by another dispatcher. */
async function claim(pool: Pool): Promise<DeliveryRow[]> {
  const { rows } = await pool.query<DeliveryRow>(
    `WITH heads AS (
       SELECT DISTINCT ON (project_id, ref) id, next_attempt_at, lease_until
         FROM forge_deliveries WHERE status = 'pending' ORDER BY project_id, ref, id
     ), due AS (
       SELECT id FROM heads WHERE next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now()) ORDER BY id LIMIT $1
     )
     UPDATE forge_deliveries d SET lease_until = now() + interval '2 minutes', attempts = d.attempts + 1
       FROM due WHERE d.id = due.id AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until < now())
     RETURNING d.id, d.project_id, d.ref, d.intent, d.attempts, d.failures`,
    [BATCH],
  );
  return rows.sort((a, b) => Number(a.id) - Number(b.id));
}

async function release(pool: Pool, rows: DeliveryRow[]): Promise<void> {
  if (rows.length === 0) return;
  await pool.query(`UPDATE forge_deliveries SET lease_until = NULL, attempts = attempts - 1 WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
}

/** Dispatches one delivery and records the outcome; `temporal-down` when Temporal did not answer. */
async function deliver(deps: Running, row: DeliveryRow): Promise<'done' | 'temporal-down'> {
  try {
    const outcome = await dispatch(deps, row);
    await deps.pool.query(
      `UPDATE forge_deliveries SET status = $2, outcome = $3, lease_until = NULL, finished_at = now() WHERE id = $1`,
      [row.id, outcome.status, outcome.status === 'ignored' ? outcome.reason : null],
    );
    return 'done';
  } catch (error) {
    const permanent = error instanceof ForgeNotConfiguredError || (error instanceof ForgeRequestError && !error.transient);
    if (permanent) {
      deps.log.warn({ err: error, delivery: row.id }, 'webhook delivery cannot be dispatched');
      await deps.pool.query(
        `UPDATE forge_deliveries SET status = 'ignored', outcome = $2, lease_until = NULL, finished_at = now() WHERE id = $1`,
        [row.id, (error as Error).message],
      );
      return 'done';
    }
    const temporalDown = isTemporalUnreachable(error);
    if (temporalDown || isDatabaseUnreachable(error) || error instanceof ForgeRequestError) {
      const wait = error instanceof ForgeRequestError && error.retryAfterMs !== undefined ? error.retryAfterMs : backoff(row.attempts);
      deps.log.warn({ err: error, delivery: row.id, retryInMs: wait }, 'webhook delivery not dispatched yet; will retry');
      await retryLater(deps.pool, row, (error as Error).message, wait, row.failures);
      return temporalDown ? 'temporal-down' : 'done';
    }
    const failures = row.failures + 1;
    const message = error instanceof Error ? error.message : String(error);
    if (failures < MAX_FAILURES) {
      const wait = Math.min(MAX_BACKOFF_MS, FAILURE_BACKOFF_MS * 4 ** (failures - 1));
      deps.log.warn({ err: error, delivery: row.id, failures, retryInMs: wait }, 'webhook delivery failed; will retry');
      await retryLater(deps.pool, row, message, wait, failures);
      return 'done';
    }
    deps.log.warn({ err: error, delivery: row.id, failures }, 'webhook delivery parked after repeated failures; redeliver it once the cause is fixed');
    await deps.pool.query(
      `UPDATE forge_deliveries SET status = 'parked', failures = $2, outcome = $3, lease_until = NULL, finished_at = now() WHERE id = $1`,
      [row.id, failures, message],
    );
    return 'done';
  }
}

async function retryLater(pool: Pool, row: DeliveryRow, message: string, waitMs: number, failures: number): Promise<void> {
  await pool.query(
    `UPDATE forge_deliveries SET outcome = $2, failures = $4, lease_until = NULL, next_attempt_at = now() + $3 * interval '1 millisecond' WHERE id = $1`,
    [row.id, message, waitMs, failures],
  );
}

function backoff(attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.max(0, attempts - 1));
}

// gRPC DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and UNAVAILABLE: the server is away or overloaded;
// CANCELLED: the dispatcher stopped while it waited for the server.
const TEMPORAL_OUTAGE_CODES = new Set([1, 4, 8, 14]);

/** Temporal did not answer (down, overloaded, or not reached yet): a wait, never a failure of the delivery. */
function isTemporalUnreachable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && TEMPORAL_OUTAGE_CODES.has(code)) return true;
    if (e.name === 'ServiceError' && /UNAVAILABLE|DEADLINE_EXCEEDED|CANCELLED|Failed to connect/i.test(e.message)) return true;
  }
  return false;
}

async function dispatch(deps: Running, row: DeliveryRow): Promise<Outcome> {
  const project = await findProject(deps.pool, { id: String(row.project_id) });
  if (!project?.enabled) return { status: 'ignored', reason: 'the project is disabled' };
  const forge = deps.forges.get(project.forge);
  const repo = { owner: project.owner, name: project.name, installationId: project.installationId };
  const intent = row.intent;

  if (intent.kind === 'push') {
    const treeHash = intent.treeHash ?? (await forge.commitTree(repo, intent.sha));
    await push(deps, project, row.ref, intent.sha, treeHash, 'push');
    return { status: 'dispatched' };
  }
  if (project.prTrust === 'none') return { status: 'ignored', reason: 'pull requests are not built for this project (pr-trust none)' };

  if (intent.kind === 'pull_request') {
    // The head is trusted when whoever pushed it can push to the repository (synchronize: the
    // sender, not the author). With pr-trust all it is built anyway, but evaluated restricted.
    const pusher = headPusher(intent);
    const trusted = intent.sameRepository || (await forge.canPush(repo, pusher));
    if (!trusted && project.prTrust !== 'everyone') {
      return { status: 'ignored', reason: `${pusher} cannot push to ${project.projectName}: a collaborator's "/ci run" comment builds it` };
    }
    await push(deps, project, row.ref, intent.sha, await forge.commitTree(repo, intent.sha), 'pull_request', !trusted);
    return { status: 'dispatched' };
  }

  if (project.prTrust !== 'everyone' && !(await forge.canPush(repo, intent.commenter))) {
    return { status: 'ignored', reason: `${intent.commenter} cannot push to ${project.projectName}: only collaborators start builds` };
  }
  // The head pinned when the comment's delivery arrived; later pushes of an outside author need
  // another /ci run. Deliveries stored before heads were pinned read it now.
  const head = intent.head ?? (await forge.pullRequest(repo, intent.number));
  // A collaborator vouches for running the code, not for what it does: code of an author who
  // cannot push is evaluated restricted.
  const untrusted = !head.sameRepository && !(await forge.canPush(repo, head.author));
  await push(deps, project, row.ref, head.sha, await forge.commitTree(repo, head.sha), 'pull_request', untrusted);
  return { status: 'dispatched' };
}

async function push(
  deps: Running,
  project: ProjectRepository,
  ref: string,
  sha: string,
  treeHash: string | undefined,
  event: 'push' | 'pull_request',
  untrusted = false,
): Promise<void> {
  // Bounded, so an unreachable Temporal holds up a pass for seconds, not for the client's whole retry budget.
  const pushed = { ...forgePushEvent({ cloneUrl: project.cloneUrl, ref, sha, ...(treeHash ? { treeHash } : {}), event }), ...(untrusted ? { untrusted } : {}) };
  const { connection } = deps.client;
  const signal = () => connection.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => signalPush(deps.client, project.projectName, ref, pushed));
  // Temporal's client adds a listener to the abort signal of every call and never removes it:
  // each push gets a signal of its own, so the dispatcher's lasting one does not keep them all.
  const stop = new AbortController();
  const abort = (): void => stop.abort();
  deps.stopping.addEventListener('abort', abort, { once: true });
  try {
    await connection.withAbortSignal(stop.signal, signal);
  } finally {
    deps.stopping.removeEventListener('abort', abort);
  }
}
