/** `[[deployments]]` in the server configuration: what it yields, and errors that name the key and the fix. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../config/errors.ts';
import { loadServerConfig } from '../../config/server.ts';
import { scratchDir } from '../protocol/helpers.ts';

const dir = scratchDir('harmonia-deploy-config-');

async function load(toml: string) {
  const file = join(dir, `server-${Math.random().toString(36).slice(2)}.toml`);
  await writeFile(file, toml);
  return loadServerConfig({ env: {}, file, cwd: dir });
}

const TARGET = `
[[deployments]]
project = "acme/infra"
environment = "web-1"
ref = "main"
job = "nixosConfigurations.web-1.config.system.build.toplevel"
agent-url = "https://web-1.example.org:9095"
secret-file = "/run/secrets/web-1"
`;

describe('deployment targets', () => {
  it('default to no deployments', async () => {
    assert.deepEqual((await load('')).deployments, []);
  });

  it('read a target with camelCase keys, a branch as its full ref, and defaults', async () => {
    const [target] = (await load(TARGET)).deployments;
    assert.equal(target!.ref, 'refs/heads/main');
    assert.equal(target!.agentUrl, 'https://web-1.example.org:9095');
    assert.equal(target!.secretFile.path, '/run/secrets/web-1');
    assert.equal(target!.approval, false);
    assert.equal(target!.timeout, 30 * 60_000);
    assert.equal(target!.cacheUrl, undefined);
  });

  it('come from HARMONIA_CI_DEPLOYMENTS as JSON, and a value that is not names the variable', async () => {
    const json = JSON.stringify([{ project: 'acme/infra', environment: 'web-1', ref: 'main', job: 'system', 'agent-url': 'http://web-1:9095', 'secret-file': '/run/s' }]);
    const [target] = (await loadServerConfig({ env: { HARMONIA_CI_DEPLOYMENTS: json }, cwd: dir })).deployments;
    assert.equal(target!.agentUrl, 'http://web-1:9095');
    await assert.rejects(loadServerConfig({ env: { HARMONIA_CI_DEPLOYMENTS: 'web-1' }, cwd: dir }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /HARMONIA_CI_DEPLOYMENTS.*expected a list of \[\[deployments\]\] tables/);
      return true;
    });
  });

  it('refuse a bad agent URL, a bad public key and two targets for one environment, naming each', async () => {
    for (const [toml, expected] of [
      [TARGET.replace('https://web-1.example.org:9095', 'ftp://web-1'), /deployments\[0\]\.agent-url/],
      [`${TARGET}public-key = "nope"\n`, /deployments\[0\]\.public-key.*Nix public key/],
      [TARGET + TARGET, /acme\/infra has two deployments to web-1/],
      [TARGET.replace('environment = "web-1"', 'environment = "web 1"'), /deployments\[0\]\.environment/],
      [TARGET.replace('/run/secrets/web-1', 'secrets/web-1'), /deployments\[0\]\.secret-file: expected an absolute path/],
    ] as const) {
      await assert.rejects(load(toml), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, expected);
        return true;
      });
    }
  });
});
