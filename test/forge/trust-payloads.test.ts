/**
 * What PR trust reads from a payload: who pushed a pull request's head (the sender on
 * synchronize) and which comment a `/ci run` is (its id and time), from GitHub's published
 * examples (@octokit/webhooks-examples) and Gitea payloads shaped as Gitea's `modules/structs`
 * (PullRequestPayload, IssueCommentPayload) serialize them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headPusher, parseForgeEvent, type Intent } from '../../forges/webhooks.ts';
import { githubExample } from './support.ts';

type PullRequestIntent = Extract<Intent, { kind: 'pull_request' }>;

function intentOf(parsed: ReturnType<typeof parseForgeEvent>): Intent {
  assert.equal(parsed.kind, 'intent', JSON.stringify(parsed));
  return (parsed as Extract<typeof parsed, { kind: 'intent' }>).intent;
}

const giteaRepository = { id: 7, name: 'app', full_name: 'team/app', owner: { id: 1, login: 'team', username: 'team' }, clone_url: 'https://git.example.org/team/app.git' };
const giteaUser = (login: string) => ({ id: login.length, login, username: login, full_name: '', email: `${login}@example.org` });

describe('PR trust from GitHub example payloads', () => {
  it('on synchronize the head is the sender\'s, on opened the author\'s', async () => {
    const sync = await githubExample('pull_request', 'synchronize');
    Object.assign(sync.sender as object, { login: 'pusher' });
    const intent = intentOf(parseForgeEvent('github', 'pull_request', sync)) as PullRequestIntent;
    assert.equal(intent.action, 'synchronize');
    assert.equal(intent.sender, 'pusher');
    assert.equal(intent.author, (sync.pull_request as { user: { login: string } }).user.login);
    assert.equal(headPusher(intent), 'pusher');

    const opened = await githubExample('pull_request', 'opened');
    Object.assign(opened.sender as object, { login: 'someone-else' });
    const openedIntent = intentOf(parseForgeEvent('github', 'pull_request', opened)) as PullRequestIntent;
    assert.equal(headPusher(openedIntent), openedIntent.author);
  });

  it('a comment carries its id and creation time', async () => {
    const example = await githubExample('issue_comment', 'created');
    Object.assign(example.issue as object, { pull_request: { url: 'https://api.github.com/repos/o/r/pulls/1' } });
    Object.assign(example.comment as object, { body: '/ci run' });
    const intent = intentOf(parseForgeEvent('github', 'issue_comment', example));
    assert.deepEqual(intent, {
      kind: 'comment',
      number: (example.issue as { number: number }).number,
      commenter: 'Codertocat',
      commentId: 492700400,
      createdAt: '2019-05-15T15:20:21Z',
    });
  });
});

describe('PR trust from Gitea payloads', () => {
  const pullRequest = (action: string, author: string, sender: string) => ({
    action,
    number: 3,
    pull_request: {
      id: 30, number: 3, user: giteaUser(author), title: 'change', state: 'open',
      head: { label: 'fork:topic', ref: 'topic', sha: 'c'.repeat(40), repo_id: 8 },
      base: { label: 'main', ref: 'main', sha: 'b'.repeat(40), repo_id: 7 },
    },
    repository: giteaRepository,
    sender: giteaUser(sender),
  });

  it('on synchronized the head is the sender\'s, on opened the author\'s', () => {
    const sync = intentOf(parseForgeEvent('gitea', 'pull_request', pullRequest('synchronized', 'author', 'pusher'))) as PullRequestIntent;
    assert.deepEqual(sync, { kind: 'pull_request', number: 3, sha: 'c'.repeat(40), author: 'author', sameRepository: false, action: 'synchronized', sender: 'pusher' });
    assert.equal(headPusher(sync), 'pusher');
    const opened = intentOf(parseForgeEvent('gitea', 'pull_request', pullRequest('opened', 'author', 'author'))) as PullRequestIntent;
    assert.equal(headPusher(opened), 'author');
  });

  it('a comment carries its id and creation time', () => {
    const payload = {
      action: 'created',
      issue: { id: 30, number: 3, user: giteaUser('author'), title: 'change', pull_request: { merged: false } },
      comment: { id: 555, body: 'LGTM\n/ci run', user: giteaUser('maintainer'), created_at: '2026-12-07T04:00:00Z', updated_at: '2026-12-07T04:00:00Z' },
      repository: giteaRepository,
      sender: giteaUser('maintainer'),
      is_pull: true,
    };
    assert.deepEqual(intentOf(parseForgeEvent('gitea', 'issue_comment', payload)), {
      kind: 'comment', number: 3, commenter: 'maintainer', commentId: 555, createdAt: '2026-12-07T04:00:00Z',
    });
  });

  it('a stored delivery without a sender (from before) falls back to the author', () => {
    assert.equal(headPusher({ kind: 'pull_request', number: 1, sha: 'a'.repeat(40), author: 'author', sameRepository: false, action: 'synchronize' }), 'author');
  });
});
