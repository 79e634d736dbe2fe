/**
 * A project's git credential reaches git (the real one, as Nix runs it) for that project only,
 * and no host-wide git configuration does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectCredentialFile, projectGitEnvironment } from '../../daemon/eval/git-credentials.ts';
import { minimalEnvironment, restrictedEnvironment } from '../../daemon/eval/process.ts';
import { nonce, tempSource } from './support.ts';

/** What `git credential fill` answers for a URL in `env`, or undefined when git finds none. */
function fill(env: Record<string, string>, host: string): string | undefined {
  const result = spawnSync('git', ['credential', 'fill'], { env, input: `protocol=https\nhost=${host}\npath=owner/repo.git\n\n`, encoding: 'utf8' });
  return result.status === 0 ? result.stdout : undefined;
}

test("a project's credential file is used by git for that project's fetches, and nothing else", async () => {
  const n = nonce();
  const dir = await tempSource({}, 'credentials');
  const home = await tempSource({ '.gitconfig': `[credential]\n\thelper = "!printf 'username=host-wide\\\\npassword=global-${n}\\\\n'; :"\n` }, 'home');
  try {
    await mkdir(join(dir, 'octo-org'));
    await writeFile(join(dir, 'octo-org', 'private-flake'), `https://x-access-token:secret-${n}@git.example.org\n`, { mode: 0o600 });

    // The host-wide helper answers an unrestricted environment: that is what the evaluator must not pass on.
    assert.match(fill({ ...minimalEnvironment(), HOME: home, GIT_TERMINAL_PROMPT: '0' }, 'git.example.org') ?? '', new RegExp(`password=global-${n}`));

    const own = await projectGitEnvironment(dir, 'octo-org/private-flake');
    const filled = fill({ ...minimalEnvironment(), HOME: home, ...own }, 'git.example.org');
    assert.match(filled ?? '', new RegExp(`username=x-access-token\npassword=secret-${n}`));
    assert.doesNotMatch(filled ?? '', /global-/);

    const other = await projectGitEnvironment(dir, 'octo-org/other');
    assert.equal(fill({ ...minimalEnvironment(), HOME: home, ...other }, 'git.example.org'), undefined, 'another project gets no credential');
    assert.equal(fill(restrictedEnvironment(home), 'git.example.org'), undefined, 'a restricted evaluation gets none');
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  }
});

test('a project name cannot name a credential file outside the directory', () => {
  assert.equal(projectCredentialFile('/run/creds', 'octo-org/hello'), '/run/creds/octo-org/hello');
  for (const name of ['../etc/passwd', 'octo/../../x', '/abs', 'a//b', './a', 'a/.']) {
    assert.equal(projectCredentialFile('/run/creds', name), undefined, name);
  }
});
