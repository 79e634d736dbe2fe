/**
 * Restricted evaluation of untrusted code, with the real Nix: no file outside the source, no URL,
 * no import-from-derivation, a memory limit, and an environment without the host's HOME or
 * credentials.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluateJobs } from '../../daemon/eval/index.ts';
import { nixOptionArgs } from '../../daemon/eval/nix.ts';
import { restrictedEnvironment } from '../../daemon/eval/process.ts';
import { collect, drvExpr, nonce, OFFLINE_NIX_OPTIONS, processesMatching, tempSource, waitFor } from './support.ts';

const FLAKE_PREFIX = '{ outputs = { self }: ';
const HASH = 'sha256-47DEQpj8HBSa+/TjejmG4yKPg6Zv/PnyZ4tC7Jm7fKQ=';

/** Jobs that reach outside the source in each way Nix offers, beside one honest job. */
function escapingJobs(n: string, outside: string): string {
  return `{
    honest = ${drvExpr(`honest-${n}`)};
    readsOutside = ${drvExpr(`reads-${n}`, `secret = builtins.readFile ${outside};`)};
    fetchesUrl = ${drvExpr(`fetches-${n}`, `got = builtins.fetchurl { url = "http://127.0.0.1:9/${n}"; sha256 = "${HASH}"; };`)};
    importsFromDerivation = ${drvExpr(`ifd-${n}`, `ifd = import (builtins.derivation { name = "ifd-${n}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo 1 > $out" ]; });`)};
  }`;
}

test('a restricted evaluation of a file refuses files outside its directory, URLs and IFD, and keeps the honest job', async () => {
  const n = nonce();
  const outside = await tempSource({ 'secret.txt': `secret ${n}` }, 'outside');
  const dir = await tempSource({ 'jobs.nix': `{ }: ${escapingJobs(n, `${outside}/secret.txt`)}`, 'neighbour.nix': '"neighbour"' });
  try {
    const source = { kind: 'file' as const, path: join(dir, 'jobs.nix') };
    const open = await collect({ source, allowIfd: false });
    assert.deepEqual([...open.jobs.keys()].sort(), ['honest', 'readsOutside'], 'unrestricted, a plain file may read any file');

    const { jobs, errors } = await collect({ source, restricted: true, allowIfd: true });
    assert.deepEqual([...jobs.keys()], ['honest']);
    assert.match(errors.get('readsOutside')?.error ?? '', new RegExp(`access to absolute path '${outside}/secret.txt' is forbidden in restricted mode`));
    assert.match(errors.get('fetchesUrl')?.error ?? '', /access to URI 'http:\/\/127\.0\.0\.1:9\/.*' is forbidden in restricted mode/);
    assert.match(errors.get('importsFromDerivation')?.error ?? '', /cannot build '.*-ifd-.*\.drv' during evaluation because the option 'allow-import-from-derivation' is disabled/);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  }
});

test('a restricted evaluation of a flake refuses fetching a URL that a pure one allows', async () => {
  const n = nonce();
  const dir = await tempSource({ 'flake.nix': `${FLAKE_PREFIX}{ checks.x86_64-linux = ${escapingJobs(n, '/etc/hostname')}; }; }` });
  try {
    const source = { kind: 'flake' as const, ref: `path:${dir}` };
    const { jobs, errors } = await collect({ source, restricted: true });
    assert.deepEqual([...jobs.keys()], ['checks.x86_64-linux.honest']);
    assert.match(errors.get('checks.x86_64-linux.readsOutside')?.error ?? '', /access to absolute path '\/etc\/hostname' is forbidden/);
    assert.match(errors.get('checks.x86_64-linux.fetchesUrl')?.error ?? '', /access to URI '.*' is forbidden in restricted mode/);

    const pure = await collect({ source, allowIfd: false });
    assert.doesNotMatch(pure.errors.get('checks.x86_64-linux.fetchesUrl')?.error ?? '', /forbidden in restricted mode/, 'unrestricted, Nix tries the download');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the restrictions come after the caller\'s Nix settings, so none of them can be lifted', () => {
  const args = nixOptionArgs({ 'restrict-eval': 'false', 'allowed-uris': 'https://', 'access-tokens': 'github.com=x' }, true, true);
  const settings = new Map<string, string>();
  for (let i = 0; i < args.length; i += 3) settings.set(args[i + 1]!, args[i + 2]!);
  assert.deepEqual(Object.fromEntries(settings), {
    'restrict-eval': 'true',
    'allowed-uris': '',
    'access-tokens': '',
    'allow-import-from-derivation': 'false',
    'netrc-file': '/dev/null',
  });
});

test('a restricted evaluation that allocates past its memory limit fails that attribute, not the host', async () => {
  const n = nonce();
  const dir = await tempSource({
    'flake.nix': `${FLAKE_PREFIX}{ checks.x86_64-linux = {
      small = ${drvExpr(`small-${n}`)};
      huge = ${drvExpr(`huge-${n}`, `size = builtins.length (builtins.genList (i: "${n}-" + toString i) 50000000);`)};
    }; }; }`,
  });
  try {
    const { jobs, errors } = await collect({ source: { kind: 'flake', ref: `path:${dir}` }, restricted: true, memoryLimitBytes: 512 * 1024 * 1024 });
    assert.deepEqual([...jobs.keys()], ['checks.x86_64-linux.small']);
    assert.match(errors.get('checks.x86_64-linux.huge')?.error ?? '', /out of memory/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a restricted evaluation runs with a private HOME and none of our credentials or git configuration', async () => {
  const n = nonce();
  const dir = await tempSource({
    // Evaluates for hours unless killed, in little memory: long enough to read the process's environment.
    'flake.nix': `${FLAKE_PREFIX}{ checks.x86_64-linux.slow-${n} = ${drvExpr(`slow-${n}`, `n = builtins.foldl' (acc: i: acc + builtins.length (builtins.genList (x: x) 1000000)) 0 (builtins.genList (x: x) 100000);`)}; }; }`,
  });
  const planted = { GITHUB_TOKEN: `token-${n}`, GIT_ASKPASS: '/bin/echo', AWS_SECRET_ACCESS_KEY: `aws-${n}`, NIX_PATH: `nixpkgs=/${n}`, NIX_USER_CONF_FILES: `/${n}.conf` };
  const saved = Object.fromEntries(Object.keys(planted).map((k) => [k, process.env[k]]));
  Object.assign(process.env, planted);
  const controller = new AbortController();
  try {
    const running = evaluateJobs({
      source: { kind: 'flake', ref: `path:${dir}` },
      restricted: true,
      memoryLimitBytes: 1024 * 1024 * 1024,
      evaluator: 'builtin',
      nixOptions: OFFLINE_NIX_OPTIONS,
      signal: controller.signal,
      onJob: () => undefined,
    });
    running.catch(() => undefined);
    let text = '';
    await waitFor('the evaluation process', async () => {
      // The evaluating processes name the flake (its locked copy of the directory), not the
      // attribute; one whose part of the jobs is empty ends at once, so read one that still runs.
      for (const line of (await processesMatching(dir)).filter((found) => found.includes(' eval '))) {
        text = await readFile(`/proc/${line.split(':')[0]}/environ`, 'utf8').catch(() => '');
        if (text !== '') return true;
      }
      return false;
    }, 60_000);
    const environ = Object.fromEntries(
      text.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    for (const name of Object.keys(planted)) assert.equal(environ[name], undefined, `${name} reached the evaluation`);
    assert.notEqual(environ.HOME, homedir());
    assert.match(environ.HOME ?? '', /harmonia-eval-home-/);
    assert.deepEqual(await readdirNames(environ.HOME!), [], 'the private HOME holds nothing but what Nix caches');
    assert.equal(environ.GIT_CONFIG_NOSYSTEM, '1');
    assert.equal(environ.GIT_CONFIG_GLOBAL, '/dev/null');
    controller.abort();
    await assert.rejects(running);
    await assert.rejects(stat(environ.HOME!), 'the private HOME is removed afterwards');
  } finally {
    controller.abort();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  }
});

/** What is in a directory besides the cache Nix itself writes there. */
async function readdirNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name !== '.cache');
}

test('restrictedEnvironment keeps store access and drops everything that names the host user\'s files', () => {
  const env = restrictedEnvironment('/tmp/h', {}, { PATH: '/p', HOME: '/root', NIX_REMOTE: 'daemon', NIX_PATH: 'x=/y', XDG_CONFIG_HOME: '/root/.config', GH_TOKEN: 't' });
  assert.equal(env.PATH, '/p');
  assert.equal(env.NIX_REMOTE, 'daemon');
  assert.equal(env.HOME, '/tmp/h');
  assert.equal(env.XDG_CONFIG_HOME, '/tmp/h/.config');
  assert.equal(env.NIX_PATH, undefined);
  assert.equal(env.GH_TOKEN, undefined);
});
