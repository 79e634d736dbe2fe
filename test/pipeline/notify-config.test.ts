/** `[[notifications]]` in the server configuration: what it yields, and errors that name the key and the fix. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadServerConfig } from '../../config/server.ts';
import { scratchDir } from '../protocol/helpers.ts';

const dir = scratchDir('harmonia-notify-config-');

async function load(toml: string) {
  const file = join(dir, `server-${Math.random().toString(36).slice(2)}.toml`);
  await writeFile(file, toml);
  return loadServerConfig({ env: {}, file, cwd: dir });
}

const HOOK = `
[[notifications]]
project = "acme/infra"
url = "https://hooks.example.org/ci"
secret-file = "/run/secrets/ci-webhook"
`;

describe('notification hooks', () => {
  it('default to none', async () => {
    assert.deepEqual((await load('')).notifications, []);
  });

  it('read a hook with camelCase keys and every event by default', async () => {
    const [hook] = (await load(HOOK)).notifications;
    assert.equal(hook!.url, 'https://hooks.example.org/ci');
    assert.equal(hook!.secretFile.path, '/run/secrets/ci-webhook');
    assert.deepEqual(hook!.events, ['eval-finished', 'build-failed', 'deployment-finished']);
    const [only] = (await load(`${HOOK}events = ["build-failed"]\n`)).notifications;
    assert.deepEqual(only!.events, ['build-failed']);
  });

  it('name the key and what is expected', async () => {
    await assert.rejects(load(`${HOOK}events = ["build-broke"]\n`), /notifications\[0\]\.events\[0\]: expected one of "eval-finished", "build-failed", "deployment-finished"/);
    await assert.rejects(load(HOOK.replace('/run/secrets/ci-webhook', 'ci-webhook')), /notifications\[0\]\.secret-file: expected an absolute path/);
    await assert.rejects(load(HOOK.replace('https://hooks.example.org/ci', 'hooks.example.org')), /notifications\[0\]\.url: expected a URL starting with http:\/\/ or https:\/\//);
  });
});
