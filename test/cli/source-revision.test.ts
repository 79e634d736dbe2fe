/** The revision `run` pushes for a local source: equal for equal sources, whatever the run itself wrote. */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sourceRevision } from '../../cli/source-revision.ts';

describe('source revision', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'harmonia-revision-'));
    await mkdir(join(dir, 'src', 'lib'), { recursive: true });
    await writeFile(join(dir, 'src', 'flake.nix'), '{ outputs = _: { }; }\n');
    await writeFile(join(dir, 'src', 'lib', 'a.nix'), '1\n');
    await writeFile(join(dir, 'src', 'jobs.nix'), 'import ./lib/a.nix\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is a 40-digit hex digest, equal for an unchanged source', async () => {
    const first = await sourceRevision(join(dir, 'src'));
    assert.match(first, /^[0-9a-f]{40}$/);
    assert.equal(await sourceRevision(join(dir, 'src')), first);
  });

  it('ignores .git and the state directory, but sees every other change', async () => {
    const src = join(dir, 'src');
    const state = join(src, '.state');
    const before = await sourceRevision(src, { exclude: [state] });
    await mkdir(join(src, '.git'), { recursive: true });
    await writeFile(join(src, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    await mkdir(state, { recursive: true });
    await writeFile(join(state, 'temporal.sqlite'), 'grows while it runs');
    assert.equal(await sourceRevision(src, { exclude: [state] }), before);
    assert.notEqual(await sourceRevision(src), before, 'without the exclusion the state directory counts');

    await writeFile(join(src, 'lib', 'a.nix'), '2\n');
    const edited = await sourceRevision(src, { exclude: [state] });
    assert.notEqual(edited, before);
    await chmod(join(src, 'lib', 'a.nix'), 0o755);
    const executable = await sourceRevision(src, { exclude: [state] });
    assert.notEqual(executable, edited);
    await symlink('lib/a.nix', join(src, 'link'));
    assert.notEqual(await sourceRevision(src, { exclude: [state] }), executable);
  });

  it('names the jobset file: two files of one directory differ, and a neighbour it may import counts', async () => {
    const src = join(dir, 'src');
    const jobs = await sourceRevision(join(src, 'jobs.nix'));
    assert.notEqual(jobs, await sourceRevision(join(src, 'flake.nix')));
    await writeFile(join(src, 'lib', 'a.nix'), '3\n');
    assert.notEqual(await sourceRevision(join(src, 'jobs.nix')), jobs);
  });
});
