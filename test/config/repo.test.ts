/** The per-repository `.harmonia-ci.toml`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../config/errors.ts';
import { applyRepoConfig, defaultRepoConfig, parseRepoConfig } from '../../config/repo.ts';

const SOURCE = 'nix-community/harmonia@0123abc:.harmonia-ci.toml';

function rejection(text: string): string {
  try {
    parseRepoConfig(text, SOURCE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('expected the file to be rejected');
}

describe('parseRepoConfig', () => {
  it('gives the defaults for an empty file', () => {
    const expected = { attrs: ['checks'] };
    assert.deepEqual(parseRepoConfig('', SOURCE), expected);
    assert.deepEqual(defaultRepoConfig(), expected);
  });

  it('reads every key', () => {
    const config = parseRepoConfig(
      `attrs = ["checks", "packages.x86_64-linux", 'hydraJobs."my-job"']
allow-ifd = false
eval-timeout = "20m"
statuses = "failures"
`,
      SOURCE,
    );
    assert.deepEqual(config, {
      attrs: ['checks', 'packages.x86_64-linux', 'hydraJobs."my-job"'],
      allowIfd: false,
      evalTimeout: 20 * 60_000,
      statuses: 'failures',
    });
  });

  it('names unknown keys, with a suggestion when one is close', () => {
    const message = rejection('attr = ["checks"]\nallow_ifd = true\nnotifications = "all"\n');
    assert.match(message, /nix-community\/harmonia@0123abc:\.harmonia-ci\.toml: attr: unknown key "attr"; did you mean "attrs"\?/);
    assert.match(message, /allow_ifd: unknown key "allow_ifd"; did you mean "allow-ifd"\?/);
    assert.match(message, /notifications: unknown key "notifications"; known keys here: attrs, allow-ifd, eval-timeout, statuses$/m);
    // Retention is the server's (`harmonia-ci gc --retention`): a repository cannot shorten it.
    assert.match(rejection('retention = "90d"\n'), /retention: unknown key "retention"/);
  });

  it('names the key and the expected value for bad values', () => {
    assert.match(rejection('attrs = "checks"\n'), /\.harmonia-ci\.toml: attrs: expected a list of attribute paths such as \["checks"\], got "checks"/);
    assert.match(rejection('attrs = []\n'), /attrs: expected at least one attribute path/);
    assert.match(rejection('attrs = ["checks..x"]\n'), /attrs\[0\]: expected an attribute path such as "checks" or "packages.x86_64-linux", got "checks..x"/);
    assert.match(rejection('allow-ifd = "yes"\n'), /allow-ifd: expected true or false, got "yes"/);
    assert.match(rejection('eval-timeout = "3 months"\n'), /eval-timeout: expected a duration such as "4h".*, got "3 months"/);
    assert.match(rejection('eval-timeout = 0\n'), /eval-timeout: expected a duration/);
    assert.match(rejection('statuses = "every"\n'), /statuses: expected one of "summary", "failures", "all", got "every"/);
  });

  it('locates TOML syntax errors', () => {
    assert.match(rejection('attrs = [\n'), /\.harmonia-ci\.toml:2:1: /);
  });
});

describe('applyRepoConfig: the project decides, a repository only tightens', () => {
  const project = { attrs: [], allowIfd: false, evalTimeoutMs: 30 * 60_000, systems: ['x86_64-linux'] };

  it('cannot turn import-from-derivation on or lengthen the timeout', () => {
    const repo = parseRepoConfig('allow-ifd = true\neval-timeout = "10h"\n', SOURCE);
    assert.deepEqual(applyRepoConfig(project, repo), { ...project, attrs: ['checks'] });
  });

  it('turns import-from-derivation off and shortens the timeout', () => {
    const open = { ...project, allowIfd: true };
    const repo = parseRepoConfig('allow-ifd = false\neval-timeout = "5m"\n', SOURCE);
    assert.deepEqual(applyRepoConfig(open, repo), { ...open, attrs: ['checks'], allowIfd: false, evalTimeoutMs: 5 * 60_000 });
  });

  it('keeps the project\'s settings when the file says nothing, and its attrs when it names them', () => {
    const open = { ...project, attrs: ['hydraJobs'], allowIfd: true };
    assert.deepEqual(applyRepoConfig(open, parseRepoConfig('attrs = ["packages"]\n', SOURCE)), open);
  });

  it('lets the file choose the commit statuses, which change only what is reported', () => {
    const summary = { ...project, statuses: 'summary' as const };
    assert.equal(applyRepoConfig(summary, parseRepoConfig('statuses = "all"\n', SOURCE)).statuses, 'all');
    assert.equal(applyRepoConfig({ ...project, statuses: 'failures' as const }, defaultRepoConfig()).statuses, 'failures');
  });

  it('sets a timeout where the project has none', () => {
    const unlimited = { ...project, evalTimeoutMs: 0 };
    assert.equal(applyRepoConfig(unlimited, parseRepoConfig('eval-timeout = "20m"\n', SOURCE)).evalTimeoutMs, 20 * 60_000);
    assert.equal(applyRepoConfig(unlimited, defaultRepoConfig()).evalTimeoutMs, 0);
  });
});
