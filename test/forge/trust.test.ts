/**
 * Pull request trust with GitHub's example payloads (@octokit/webhooks-examples) on real Temporal,
 * PostgreSQL and Nix: `synchronize` trusts whoever pushed, `/ci run` builds the head seen when the
 * comment's delivery arrived, a replayed or late comment approves nothing new, and code of an
 * author who cannot push is evaluated restricted.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { waitForEvalWorkflow } from '../pipeline/harness.ts';
import {
  adaptRepository, commitFlake, commitJobs, enableRepository, eventually, githubExample, setRef, startGitHubStack, SYSTEM, type GitHubStack,
} from './support.ts';

type Json = Record<string, unknown>;

describe('GitHub: pull request trust', () => {
  let stack: GitHubStack;
  let commentIds = 1_000;

  const pool = () => stack.pipeline.db.pool;
  const prPayload = async (action: string, number: number, sha: string, author: string, sender: string) => {
    const payload = adaptRepository(await githubExample('pull_request', action), stack.repo, stack.installation);
    const pr = payload.pull_request as Record<string, Json>;
    Object.assign(payload, { number, sender: { ...(payload.sender as Json), login: sender } });
    Object.assign(pr, { number, user: { ...pr.user, login: author } });
    Object.assign(pr.head!, { sha, repo: { ...(pr.head!.repo as Json), id: 90_000 + number } });
    Object.assign(pr.base!, { repo: { ...(pr.base!.repo as Json), id: stack.repo.id } });
    return payload;
  };
  const commentPayload = async (number: number, author: string, options: { id?: number; createdAt?: Date } = {}) => {
    const payload = adaptRepository(await githubExample('issue_comment', 'created'), stack.repo, stack.installation);
    Object.assign(payload.issue as Json, { number, pull_request: { url: `${stack.fake.url}/repos/${stack.repo.owner}/${stack.repo.name}/pulls/${number}` } });
    Object.assign(payload.comment as Json, {
      body: '/ci run',
      user: { login: author },
      id: options.id ?? ++commentIds,
      created_at: (options.createdAt ?? new Date()).toISOString(),
    });
    return payload;
  };
  const outcome = (delivery: string) =>
    eventually(`delivery ${delivery} handled`, async () => {
      const { rows } = await pool().query<{ status: string; outcome: string | null }>(
        `SELECT status, outcome FROM forge_deliveries WHERE delivery_id = $1 AND status <> 'pending'`,
        [delivery],
      );
      return rows[0];
    });
  const deliver = async (event: string, payload: unknown) => {
    const delivery = randomUUID();
    const reply = await stack.deliver(event, payload, { delivery });
    return { reply, delivery };
  };
  const shasOf = async (ref: string) =>
    (await pool().query<{ commit_sha: string }>('SELECT commit_sha FROM evaluations WHERE ref = $1 ORDER BY id', [ref])).rows.map((r) => r.commit_sha);
  const finishedEval = async (sha: string, ref: string) => {
    const evalId = await eventually(`an eval of ${sha.slice(0, 8)}`, async () => {
      const { rows } = await pool().query<{ id: string }>('SELECT id FROM evaluations WHERE commit_sha = $1 AND ref = $2', [sha, ref]);
      return rows[0] ? String(rows[0].id) : undefined;
    });
    await waitForEvalWorkflow(stack.pipeline.client, pool(), evalId);
    return evalId;
  };
  const attrError = async (evalId: string, attr: string) =>
    (await pool().query<{ error: string | null }>('SELECT error FROM eval_attrs WHERE eval_id = $1 AND attr = $2', [evalId, attr])).rows[0]?.error ?? '';

  /** A flake whose `fetches` job downloads a URL at evaluation time: restricted evaluation refuses it by name. */
  const fetchingFlake = (label: string) =>
    commitFlake(
      stack.repo.dir,
      `{ honest = builtins.derivation { name = "honest-${label}"; system = "${SYSTEM}"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
         fetches = builtins.derivation { name = "fetches-${label}"; system = "${SYSTEM}"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ];
           got = builtins.fetchurl { url = "http://127.0.0.1:9/${label}"; sha256 = "sha256-47DEQpj8HBSa+/TjejmG4yKPg6Zv/PnyZ4tC7Jm7fKQ="; }; }; }`,
      { branch: `pr-${label}` },
    );

  before(async () => {
    stack = await startGitHubStack();
    await enableRepository(stack);
    stack.fake.collaborators.add('maintainer');
  });

  after(async () => {
    await stack?.close();
  });

  it('on synchronize trusts whoever pushed: an outsider pushing to a collaborator\'s PR builds nothing', async () => {
    const first = await commitJobs(stack.repo.dir, { one: 'true' }, { branch: 'pr-30' });
    setRef(stack.repo.dir, 'refs/pull/30/head', first.sha);
    stack.fake.pulls.set(30, { author: 'maintainer', sameRepository: false });
    const opened = await deliver('pull_request', await prPayload('opened', 30, first.sha, 'maintainer', 'maintainer'));
    assert.equal((await outcome(opened.delivery)).status, 'dispatched');

    const pushedByOutsider = await commitJobs(stack.repo.dir, { one: 'true', two: 'true' });
    setRef(stack.repo.dir, 'refs/pull/30/head', pushedByOutsider.sha);
    const sync = await deliver('pull_request', await prPayload('synchronize', 30, pushedByOutsider.sha, 'maintainer', 'outsider'));
    assert.deepEqual(await outcome(sync.delivery), {
      status: 'ignored',
      outcome: `outsider cannot push to ${stack.repo.owner}/${stack.repo.name}: a collaborator's "/ci run" comment builds it`,
    });

    const pushedByMaintainer = await commitJobs(stack.repo.dir, { one: 'true', three: 'true' });
    setRef(stack.repo.dir, 'refs/pull/30/head', pushedByMaintainer.sha);
    const trusted = await deliver('pull_request', await prPayload('synchronize', 30, pushedByMaintainer.sha, 'maintainer', 'maintainer'));
    assert.equal((await outcome(trusted.delivery)).status, 'dispatched');
    await finishedEval(pushedByMaintainer.sha, 'refs/pull/30/head');
    assert.deepEqual(await shasOf('refs/pull/30/head'), [first.sha, pushedByMaintainer.sha]);
  });

  it('/ci run builds the head seen when the comment arrived, restricted; a replay or a late comment approves nothing newer', async () => {
    const ref = 'refs/pull/31/head';
    const seen = await fetchingFlake('31a');
    setRef(stack.repo.dir, ref, seen.sha);
    stack.fake.pulls.set(31, { author: 'outsider', sameRepository: false });

    const comment = await commentPayload(31, 'maintainer');
    const approved = await deliver('issue_comment', comment);
    assert.equal(approved.reply.statusCode, 202, approved.reply.body);
    const stored = await pool().query<{ intent: { head?: { sha: string } } }>('SELECT intent FROM forge_deliveries WHERE delivery_id = $1', [approved.delivery]);
    assert.equal(stored.rows[0]?.intent.head?.sha, seen.sha, 'the head is pinned when the delivery arrives');

    // The author pushes right after the comment: neither a replay of it nor a late comment builds that.
    const later = await fetchingFlake('31b');
    setRef(stack.repo.dir, ref, later.sha);
    assert.equal((await outcome(approved.delivery)).status, 'dispatched');
    const evalId = await finishedEval(seen.sha, ref);

    const replay = await deliver('issue_comment', comment);
    assert.equal(replay.reply.statusCode, 202);
    assert.deepEqual(replay.reply.json(), { status: 'duplicate' }, 'the same comment under a new delivery id');
    const late = await deliver('issue_comment', await commentPayload(31, 'maintainer', { createdAt: new Date(Date.now() - 2 * 3600_000) }));
    assert.equal(late.reply.statusCode, 200);
    assert.match(late.reply.json().reason, /over an hour ago \(a late or replayed delivery\): comment \/ci run again/);
    assert.deepEqual(await shasOf(ref), [seen.sha]);

    // The outsider's code was evaluated restricted: its download was refused by name.
    assert.match(await attrError(evalId, `ciJobs.${SYSTEM}.fetches`), /access to URI 'http:\/\/127\.0\.0\.1:9\/31a' is forbidden in restricted mode/);
    const honest = await pool().query('SELECT drv_path FROM eval_attrs WHERE eval_id = $1 AND attr = $2', [evalId, `ciJobs.${SYSTEM}.honest`]);
    assert.ok(honest.rows[0]?.drv_path, 'the honest job still evaluates');
  });

  it('evaluates a collaborator\'s pull request unrestricted', async () => {
    const ref = 'refs/pull/32/head';
    const own = await fetchingFlake('32');
    setRef(stack.repo.dir, ref, own.sha);
    stack.fake.pulls.set(32, { author: 'maintainer', sameRepository: false });
    const opened = await deliver('pull_request', await prPayload('opened', 32, own.sha, 'maintainer', 'maintainer'));
    assert.equal((await outcome(opened.delivery)).status, 'dispatched');
    const evalId = await finishedEval(own.sha, ref);
    const error = await attrError(evalId, `ciJobs.${SYSTEM}.fetches`);
    assert.notEqual(error, '', 'the download fails here too (nothing listens)');
    assert.doesNotMatch(error, /restricted mode/);
  });
});
