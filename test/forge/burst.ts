/**
 * A burst of GitHub webhook deliveries over real HTTP to the API listening on a port, as a busy
 * repository (or a forge redelivering after an outage) sends them: pushes to several refs, each
 * ref's pushes in order, redeliveries of deliveries already answered (same delivery id), and
 * deliveries with a missing, wrong or tampered signature, all mixed and sent without waiting for
 * one another. `checkWebhookBurst` then asserts what must hold once the pipeline is done.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { random as seededRandom } from '../nar/helpers.ts';
import { waitForEvalWorkflow } from '../pipeline/harness.ts';
import { eventually, githubSignature, lastStatus, type Commit, type GitHubStack } from './support.ts';

export interface BurstPlan {
  /** Refs pushed to (each must contain the last commit); every ref gets `commits` in this order. */
  refs: string[];
  commits: Commit[];
  /** Deliveries in all, sent evenly over `seconds`. */
  deliveries: number;
  seconds: number;
  /** Share of the deliveries whose signature is missing, made with another secret, or of another body. */
  badShare: number;
  /** Seeds the mix, so a failing burst can be sent again as it was. */
  seed?: number;
}

export type BurstKind = 'push' | 'redelivery' | 'missing signature' | 'wrong secret' | 'tampered body';

export interface SentDelivery {
  kind: BurstKind;
  delivery: string;
  ref: string;
  sha: string;
  /** HTTP status and the `status` of the reply body (accepted, duplicate, …), or the error. */
  code: number;
  answer: string;
  /** From sending the request to having the whole reply. */
  ms: number;
}

const BAD_KINDS: BurstKind[] = ['missing signature', 'wrong secret', 'tampered body'];

/** Sends the burst to `stack.url` and resolves once every delivery is answered. */
export async function sendWebhookBurst(stack: GitHubStack, plan: BurstPlan): Promise<SentDelivery[]> {
  if (!stack.url) throw new Error('the webhook burst needs the API listening on a port (startGitHubStack({ listen: true }))');
  const url = `${stack.url}/webhook/github`;
  const random = seededRandom(plan.seed ?? 1);
  const bodies = new Map<string, string>();
  for (const ref of plan.refs) {
    for (const commit of plan.commits) bodies.set(`${ref} ${commit.sha}`, JSON.stringify(await stack.pushPayload(commit.sha, commit.tree, ref)));
  }
  const pushes = plan.refs.length * plan.commits.length;
  let bad = Math.round(plan.deliveries * plan.badShare);
  let redeliveries = plan.deliveries - pushes - bad;
  if (redeliveries < 0) throw new Error(`${plan.deliveries} deliveries cannot hold ${pushes} pushes and ${bad} bad signatures`);

  // Per ref: the index of its next push, and whether one is unanswered (pushes of a ref go in order).
  const next = new Map(plan.refs.map((ref) => [ref, 0]));
  const waiting = new Set<string>();
  const answered: Array<{ delivery: string; ref: string; sha: string; body: string }> = [];
  const sent: Array<Promise<SentDelivery>> = [];

  const post = async (kind: BurstKind, delivery: string, ref: string, sha: string, body: string, signature: string | undefined): Promise<SentDelivery> => {
    const started = performance.now();
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-github-delivery': delivery,
          ...(signature === undefined ? {} : { 'x-hub-signature-256': signature }),
        },
        body,
      });
      const text = await response.text();
      let answer = text;
      try {
        answer = (JSON.parse(text) as { status?: string }).status ?? text;
      } catch {
        // Not JSON: keep the text as the answer.
      }
      return { kind, delivery, ref, sha, code: response.status, answer, ms: performance.now() - started };
    } catch (error) {
      return { kind, delivery, ref, sha, code: 0, answer: (error as Error).message, ms: performance.now() - started };
    }
  };

  const sendPush = (ref: string): Promise<SentDelivery> => {
    const commit = plan.commits[next.get(ref)!]!;
    next.set(ref, next.get(ref)! + 1);
    waiting.add(ref);
    const delivery = randomUUID();
    const body = bodies.get(`${ref} ${commit.sha}`)!;
    return post('push', delivery, ref, commit.sha, body, githubSignature(stack.secret, body)).then((result) => {
      waiting.delete(ref);
      answered.push({ delivery, ref, sha: commit.sha, body });
      return result;
    });
  };
  const sendBad = (): Promise<SentDelivery> => {
    const kind = BAD_KINDS[Math.floor(random() * BAD_KINDS.length)]!;
    const ref = plan.refs[Math.floor(random() * plan.refs.length)]!;
    const commit = plan.commits.at(-1)!;
    const body = bodies.get(`${ref} ${commit.sha}`)!;
    const signature =
      kind === 'missing signature' ? undefined
      : kind === 'wrong secret' ? githubSignature(`not-${stack.secret}`, body)
      : githubSignature(stack.secret, body.replace(commit.sha, plan.commits[0]!.sha));
    return post(kind, randomUUID(), ref, commit.sha, body, signature);
  };
  const sendRedelivery = (): Promise<SentDelivery> => {
    const original = answered[Math.floor(random() * answered.length)]!;
    return post('redelivery', original.delivery, original.ref, original.sha, original.body, githubSignature(stack.secret, original.body));
  };

  const interval = (plan.seconds * 1000) / plan.deliveries;
  const started = performance.now();
  for (let i = 0; i < plan.deliveries; ) {
    const slots = plan.deliveries - i;
    const pushesLeft = pushes - (answered.length + waiting.size);
    const ready = plan.refs.filter((ref) => !waiting.has(ref) && next.get(ref)! < plan.commits.length);
    const kinds: Array<['push' | 'bad' | 'redelivery', number]> = [
      ['push', ready.length > 0 ? pushesLeft : 0],
      ['bad', bad],
      ['redelivery', answered.length > 0 ? redeliveries : 0],
    ];
    // Pushes must all go out: when the slots left are only enough for them, nothing else is sent.
    const choices = slots <= pushesLeft ? kinds.filter(([kind]) => kind === 'push') : kinds;
    const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
    if (total === 0) {
      // Nothing can go now (the next push of every ref awaits its answer, nothing answered yet).
      await new Promise((resolve) => setTimeout(resolve, 2));
      continue;
    }
    let pick = random() * total;
    const kind = choices.find(([, weight]) => (pick -= weight) < 0)?.[0] ?? choices.find(([, weight]) => weight > 0)![0];
    if (kind === 'push') sent.push(sendPush(ready[Math.floor(random() * ready.length)]!));
    else if (kind === 'bad') {
      bad--;
      sent.push(sendBad());
    } else {
      redeliveries--;
      sent.push(sendRedelivery());
    }
    i++;
    const due = started + i * interval - performance.now();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
  }
  return Promise.all(sent);
}

export interface BurstFigures {
  /** The last eval of each ref (of the last commit). */
  lastEvals: Map<string, string>;
  stored: number;
  refused: number;
  redeliveries: number;
  p50: number;
  p99: number;
  /** The final commit status of each context on the forge for the last commit. */
  finalStatuses: Record<string, string>;
}

/**
 * What must hold after a burst: every bad signature answered 401 and stored nothing; every push
 * accepted and stored once, every redelivery answered as a duplicate; nothing left pending in
 * forge_deliveries; every ref's last eval is of the last commit; every eval of the project ended;
 * and every commit pushed has final (not pending) statuses on the forge.
 */
export async function checkWebhookBurst(stack: GitHubStack, plan: BurstPlan, sent: SentDelivery[], timeoutMs: number): Promise<BurstFigures> {
  const { pool } = stack.pipeline.db;
  const of = (kinds: BurstKind[]) => sent.filter((s) => kinds.includes(s.kind));
  assert.equal(sent.length, plan.deliveries);
  const bad = of(BAD_KINDS);
  assert.deepEqual(bad.filter((s) => s.code !== 401).map((s) => `${s.kind} ${s.delivery}: ${s.code} ${s.answer}`), [], 'bad signatures answered 401');
  const pushes = of(['push']);
  assert.equal(pushes.length, plan.refs.length * plan.commits.length);
  assert.deepEqual(pushes.filter((s) => s.code !== 202 || s.answer !== 'accepted').map((s) => `${s.delivery}: ${s.code} ${s.answer}`), [], 'pushes accepted');
  const redeliveries = of(['redelivery']);
  assert.deepEqual(
    redeliveries.filter((s) => s.code !== 202 || s.answer !== 'duplicate').map((s) => `${s.delivery}: ${s.code} ${s.answer}`),
    [],
    'redeliveries answered as duplicates',
  );

  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1_000, deadline - Date.now());
  const stored = await pool.query<{ delivery_id: string; n: string }>('SELECT delivery_id, count(*) AS n FROM forge_deliveries GROUP BY delivery_id');
  const storedIds = new Map(stored.rows.map((r) => [r.delivery_id, Number(r.n)]));
  assert.deepEqual(bad.filter((s) => storedIds.has(s.delivery)).map((s) => `${s.kind} ${s.delivery}`), [], 'bad signatures stored nothing');
  assert.deepEqual(
    [...storedIds].filter(([id, n]) => n !== 1 || !pushes.some((s) => s.delivery === id)),
    [],
    'each push stored once, and nothing else',
  );
  assert.equal(storedIds.size, pushes.length);
  await eventually(
    'no delivery left pending',
    async () => {
      const { rows } = await pool.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM forge_deliveries GROUP BY status');
      return rows.some((r) => r.status === 'pending') ? undefined : rows;
    },
    left(),
  ).then((rows) => assert.deepEqual(rows.map((r) => `${r.status} ${r.n}`), [`dispatched ${pushes.length}`], 'every delivery dispatched'));

  const last = plan.commits.at(-1)!;
  const lastEvals = new Map<string, string>();
  for (const ref of plan.refs) {
    const evalId = await eventually(
      `the eval of ${last.sha.slice(0, 8)} on ${ref}`,
      async () => {
        const { rows } = await pool.query<{ id: string }>('SELECT id FROM evaluations WHERE ref = $1 AND commit_sha = $2', [ref, last.sha]);
        return rows[0] ? String(rows[0].id) : undefined;
      },
      left(),
    );
    lastEvals.set(ref, evalId);
  }
  // Every push signal is handled by now (each ref's last one made its eval): wait for all their evals.
  const evals = await pool.query<{ id: string }>('SELECT id FROM evaluations ORDER BY id');
  for (const { id } of evals.rows) await waitForEvalWorkflow(stack.pipeline.client, pool, String(id), left());
  for (const [ref, evalId] of lastEvals) {
    const { rows } = await pool.query<{ id: string; status: string }>('SELECT id, status FROM evaluations WHERE ref = $1 ORDER BY id DESC LIMIT 1', [ref]);
    assert.equal(String(rows[0]!.id), evalId, `the last eval of ${ref} is of its last push`);
    assert.ok(['succeeded', 'skipped'].includes(rows[0]!.status), `the last eval of ${ref} ended ${rows[0]!.status}`);
  }
  const open = await pool.query<{ id: string }>("SELECT id FROM evaluations WHERE status IN ('queued', 'running')");
  assert.deepEqual(open.rows, [], 'no eval left open');

  const contexts = ['harmonia-ci/nix-eval', 'harmonia-ci/nix-build'];
  const finalStatuses = await eventually(
    'final statuses on the forge for every commit pushed',
    () => {
      for (const commit of plan.commits) {
        for (const context of contexts) {
          const state = lastStatus(stack.fake, commit.sha, context)?.state;
          if (state === undefined || state === 'pending') return undefined;
        }
      }
      return Object.fromEntries(contexts.map((context) => [context, lastStatus(stack.fake, last.sha, context)!.state]));
    },
    left(),
  );
  assert.deepEqual(stack.fake.violations, [], 'requests to the forge as its API description allows');

  const latencies = sent.map((s) => s.ms).sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
  return {
    lastEvals,
    stored: storedIds.size,
    refused: bad.length,
    redeliveries: redeliveries.length,
    p50: percentile(50),
    p99: percentile(99),
    finalStatuses,
  };
}

