/** Server configuration: defaults, file, environment overrides, and error messages that name the key. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, SecretFileError } from '../../config/errors.ts';
import { envNameForKey, SERVER_KEYS } from '../../config/keys.ts';
import { serverConfigSchema } from '../../config/schema.ts';
import { readS3CredentialsFile } from '../../config/secrets.ts';
import { loadServerConfig, machineDefaults } from '../../config/server.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'harmonia-config-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function writeConfig(name: string, toml: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, toml);
  return file;
}

async function configError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('defaults', () => {
  it('follow docs/architecture.md (Build states and limits) with nothing configured', async () => {
    const config = await loadServerConfig({ env: {}, cwd: dir });
    assert.equal(config.stateDir, join(dir, '.state'));
    assert.equal(config.database.url, undefined, 'no URL: the embedded database');
    assert.equal(config.temporal.address, undefined, 'no address: a dev server');
    assert.equal(config.temporal.namespace, 'default');
    assert.deepEqual(config.api, { host: '127.0.0.1', port: 8080, publicUrl: 'http://localhost:8080' });
    assert.deepEqual(config.cache.url, { kind: 'local', path: join(dir, '.state', 'cache') });
    assert.deepEqual(config.limits, {
      buildTimeout: 4 * 3_600_000,
      maxSilent: 30 * 60_000,
      maxOutputSize: 4 * 1024 ** 3,
      maxLogSize: 64 * 1024 ** 2,
      evalTimeout: 3_600_000,
      evalMemory: 4 * 1024 ** 3,
      attempts: 3,
      builderHeartbeatTimeout: 2 * 60_000,
      logTail: 64 * 1024,
      presignedUrlLifetime: 15 * 60_000,
      publishDeadline: 6 * 3600_000,
    });
    assert.deepEqual(config.projects, { schedulingShares: 100, prTrust: 'collaborators', allowIfd: true, statuses: 'summary' });
    assert.deepEqual(config.builder.systems, [machineDefaults(dir).system]);
    assert.ok(config.builder.maxJobs >= 1);
    assert.deepEqual(config.forges, {});
    assert.equal(config.log.level, 'info');
  });
});

describe('file and environment', () => {
  it('reads a full file, resolving relative paths against the file', async () => {
    const file = await writeConfig(
      'full.toml',
      `state-dir = "state"
[database]
url = "postgresql://ci@db.example.org/ci"
[temporal]
address = "temporal.example.org:7233"
namespace = "ci"
tls = { cert-file = "tls/client.pem", key-file = "tls/client.key" }
[api]
host = "0.0.0.0"
port = 9000
public-url = "https://ci.example.org"
[cache]
url = "s3://nix-cache?endpoint=http://127.0.0.1:8333&region=us-east-1"
signing-key-file = "keys/cache.sec"
public-keys = ["cache.example.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="]
[builder]
systems = ["x86_64-linux", "i686-linux"]
features = ["kvm", "nixos-test"]
max-jobs = 8
[limits]
build-timeout = "2h"
max-output-size = "10GiB"
eval-timeout = 600
[forges.github]
app-id = 12345
private-key-file = "github.pem"
webhook-secret-file = "github-webhook"
[forges.gitea]
url = "https://gitea.example.org"
token-file = "gitea-token"
[projects]
scheduling-shares = 50
pr-trust = "everyone"
`,
    );
    const config = await loadServerConfig({ file, env: {}, cwd: '/' });
    assert.equal(config.stateDir, join(dir, 'state'));
    assert.equal(config.temporal.tls?.certFile?.path, join(dir, 'tls/client.pem'));
    assert.equal(config.api.publicUrl, 'https://ci.example.org');
    assert.deepEqual(config.cache.url, {
      kind: 's3',
      bucket: 'nix-cache',
      endpoint: 'http://127.0.0.1:8333',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    assert.equal(config.cache.signingKeyFile?.path, join(dir, 'keys/cache.sec'));
    assert.deepEqual(config.builder, { systems: ['x86_64-linux', 'i686-linux'], features: ['kvm', 'nixos-test'], maxJobs: 8, substituters: [], verifyInputContents: false });
    assert.equal(config.limits.buildTimeout, 7_200_000);
    assert.equal(config.limits.maxOutputSize, 10 * 1024 ** 3);
    assert.equal(config.limits.evalTimeout, 600_000);
    assert.equal(config.limits.maxSilent, 1_800_000, 'unset limits keep their defaults');
    assert.equal(config.forges.github?.appId, 12345);
    assert.equal(config.forges.github?.privateKeyFile?.path, join(dir, 'github.pem'));
    assert.equal(config.forges.gitea?.tokenFile.path, join(dir, 'gitea-token'));
    assert.deepEqual(config.projects, { schedulingShares: 50, prTrust: 'everyone', allowIfd: true, statuses: 'summary' });
    assert.doesNotMatch(JSON.stringify(config), /BEGIN/, 'the config holds paths, never secret contents');
  });

  it('lets HARMONIA_CI_* variables override the file, and the well-known aliases fill in', async () => {
    const file = await writeConfig('override.toml', '[api]\nport = 8081\n[database]\nurl = "postgresql://file/db"\n');
    const config = await loadServerConfig({
      file,
      cwd: '/srv/ci',
      env: {
        HARMONIA_CI_API_PORT: '9090',
        HARMONIA_CI_DATABASE_URL: 'postgresql://env/db',
        DATABASE_URL: 'postgresql://alias/db',
        TEMPORAL_ADDRESS: 'localhost:7233',
        HARMONIA_CI_STATE_DIR: 'var',
        HARMONIA_CI_BUILDER_SYSTEMS: 'x86_64-linux, aarch64-linux',
        HARMONIA_CI_LIMITS_MAX_SILENT: '10m',
        HARMONIA_CI_API_HOST: '',
      },
    });
    assert.equal(config.api.port, 9090);
    assert.equal(config.database.url, 'postgresql://env/db', 'HARMONIA_CI_DATABASE_URL wins over DATABASE_URL');
    assert.equal(config.temporal.address, 'localhost:7233');
    assert.equal(config.stateDir, '/srv/ci/var', 'relative paths from the environment are relative to cwd');
    assert.deepEqual(config.builder.systems, ['x86_64-linux', 'aarch64-linux']);
    assert.equal(config.limits.maxSilent, 600_000);
    assert.equal(config.api.host, '127.0.0.1', 'an empty variable counts as unset');

    const aliasOnly = await loadServerConfig({ env: { DATABASE_URL: 'postgresql://alias/db' }, cwd: dir });
    assert.equal(aliasOnly.database.url, 'postgresql://alias/db');
  });

  it('finds the file through HARMONIA_CI_CONFIG', async () => {
    const file = await writeConfig('via-env.toml', '[temporal]\nnamespace = "from-file"\n');
    const config = await loadServerConfig({ env: { HARMONIA_CI_CONFIG: file }, cwd: dir });
    assert.equal(config.temporal.namespace, 'from-file');
  });

  it('reads secret files only when asked, and names the key when one is missing', async () => {
    const file = await writeConfig('secrets.toml', '[forges.github]\ntoken-file = "token"\n[s3]\ncredentials-file = "aws"\nprofile = "ci"\n');
    const config = await loadServerConfig({ file, env: {} });
    const token = config.forges.github?.tokenFile;
    assert.ok(token);
    await assert.rejects(token.read(), (error: unknown) => {
      assert.ok(error instanceof SecretFileError);
      assert.match(error.message, /cannot read forges\.github\.token-file from .*\/token: ENOENT/);
      return true;
    });
    await writeFile(join(dir, 'token'), 'ghp_secret\n');
    assert.equal(await token.read(), 'ghp_secret');

    await writeFile(join(dir, 'aws'), '[default]\naws_access_key_id = A\n\n[ci]\naws_access_key_id = AKIA\naws_secret_access_key = s3cr3t\n');
    const credentials = config.s3.credentialsFile;
    assert.ok(credentials);
    assert.deepEqual(await readS3CredentialsFile(credentials, config.s3.profile), { accessKeyId: 'AKIA', secretAccessKey: 's3cr3t' });
    await assert.rejects(readS3CredentialsFile(credentials, 'default'), /profile \[default\] needs aws_access_key_id and aws_secret_access_key/);
  });
});

describe('error messages', () => {
  it('name the file and dotted key for every key given a value of the wrong type', async () => {
    for (const [key, kind] of SERVER_KEYS) {
      const parts = key.split('.');
      const table = parts.slice(0, -1).join('.');
      const wrong = kind === 'boolean' ? '"yes"' : 'true';
      const file = await writeConfig('wrong-type.toml', `${table ? `[${table}]\n` : ''}${parts.at(-1)} = ${wrong}\n`);
      const message = await configError(loadServerConfig({ file, env: {} }));
      assert.match(message, new RegExp(`${file}: ${key.replace(/\./g, '\\.')}: expected .*, got ${wrong}`), key);
    }
  });

  it('name the environment variable and what was expected', async () => {
    const invalid: Record<string, string> = {
      'log.level': 'loud',
      'database.url': 'mysql://db/x',
      'temporal.address': 'no-port',
      'api.public-url': 'ci.example.org',
      'cache.url': 's3://bucket/path',
      'cache.upstream': 'https://cache.example.org',
      'forges.gitea.url': 'gitea',
      'projects.pr-trust': 'anyone',
    };
    const byKind: Record<string, string> = { integer: 'many', boolean: 'maybe', duration: 'soon', size: 'huge', list: 'not/valid' };
    let checked = 0;
    for (const [key, kind] of SERVER_KEYS) {
      const value = invalid[key] ?? byKind[kind];
      if (value === undefined) continue; // free text (namespace, host, paths): any non-empty string is valid
      const variable = envNameForKey(key);
      const message = await configError(loadServerConfig({ env: { [variable]: value }, cwd: dir }));
      assert.match(message, new RegExp(`environment variable ${variable}: .*expected`), `${key}: ${message}`);
      checked++;
    }
    assert.ok(checked >= 20, `checked ${checked} keys`);
    const message = await configError(loadServerConfig({ env: { HARMONIA_CI_LIMITS_BUILD_TIMEOUT: '4 hours' }, cwd: dir }));
    assert.equal(
      message,
      'invalid configuration: environment variable HARMONIA_CI_LIMITS_BUILD_TIMEOUT: expected a duration such as "4h", "30m", "90s", "1h30m", "90d" or a number of seconds, got "4 hours"',
    );
    assert.match(await configError(loadServerConfig({ env: { DATABASE_URL: 'mysql://x' }, cwd: dir })), /environment variable DATABASE_URL: expected a URL starting with postgres:\/\//);
  });

  it('name unknown keys and suggest the close one', async () => {
    const file = await writeConfig('unknown.toml', '[api]\nprot = 1\n[limit]\nattempts = 2\n[cache]\nsigning_key_file = "k"\n');
    const message = await configError(loadServerConfig({ file, env: {} }));
    assert.match(message, new RegExp(`${file}: api\\.prot: unknown key "prot"; did you mean "port"\\?`));
    assert.match(message, new RegExp(`${file}: limit: unknown key "limit"; did you mean "limits"\\?`));
    assert.match(message, /cache\.signing_key_file: unknown key "signing_key_file"; did you mean "signing-key-file"\?/);
  });

  it('check settings that go together', async () => {
    const file = await writeConfig('github.toml', '[forges.github]\napp-id = 1\n[temporal.tls]\ncert-file = "c.pem"\n');
    const message = await configError(loadServerConfig({ file, env: {} }));
    assert.match(message, /forges\.github\.private-key-file: is required when forges\.github\.app-id is set/);
    assert.match(message, /temporal\.tls\.key-file: expected cert-file and key-file together/);
    const empty = await writeConfig('github-empty.toml', '[forges.github]\n');
    assert.match(await configError(loadServerConfig({ file: empty, env: {} })), /forges\.github\.app-id: expected app-id with private-key-file .* or token-file/);
  });

  it('keep the live log tail small enough to travel through Temporal', async () => {
    const message = await configError(loadServerConfig({ env: { HARMONIA_CI_LIMITS_LOG_TAIL: '1M' }, cwd: dir }));
    assert.match(message, /environment variable HARMONIA_CI_LIMITS_LOG_TAIL: expected a size of at most 256K, got "1M"/);
    assert.equal((await loadServerConfig({ env: { HARMONIA_CI_LIMITS_LOG_TAIL: '256K' }, cwd: dir })).limits.logTail, 256 * 1024);
  });

  it('locate TOML syntax errors and unreadable files', async () => {
    const file = await writeConfig('syntax.toml', '[api]\nport = \n');
    assert.match(await configError(loadServerConfig({ file, env: {} })), new RegExp(`${file}:2:8: Invalid TOML document`));
    assert.match(await configError(loadServerConfig({ file: join(dir, 'absent.toml'), env: {} })), /absent\.toml: cannot read the configuration file/);
  });
});

describe('upstream caches', () => {
  const NIXOS = 'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=';
  const MIRROR = 'mirror-1:Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=';

  it('are read from [[cache.upstream]] tables in order, and from one variable where each URL opens an entry', async () => {
    const file = await writeConfig(
      'upstream.toml',
      `[[cache.upstream]]\nurl = "https://cache.nixos.org"\npublic-keys = ["${NIXOS}"]\n[[cache.upstream]]\nurl = "file:///srv/mirror"\npublic-keys = ["${MIRROR}", "${NIXOS}"]\n`,
    );
    const expected = [
      { url: 'https://cache.nixos.org', 'public-keys': [NIXOS] },
      { url: 'file:///srv/mirror', 'public-keys': [MIRROR, NIXOS] },
    ];
    assert.deepEqual((await loadServerConfig({ file, env: {} })).cache.upstream, expected);
    const env = { HARMONIA_CI_CACHE_UPSTREAM: `https://cache.nixos.org ${NIXOS}, file:///srv/mirror ${MIRROR},${NIXOS}` };
    assert.deepEqual((await loadServerConfig({ env, cwd: dir })).cache.upstream, expected);
    const defaults = await loadServerConfig({ env: {}, cwd: dir });
    assert.deepEqual(defaults.cache.upstream, []);
    assert.equal(defaults.cache.negativeTtl, 30_000);
    assert.equal(defaults.cache.positiveTtl, 600_000);
  });

  it('name the entry and the fix: a scheme we cannot read, no key, a key that does not parse, a key before any URL', async () => {
    const file = await writeConfig(
      'upstream-bad.toml',
      `[[cache.upstream]]\nurl = "s3://bucket"\npublic-keys = ["${NIXOS}"]\n[[cache.upstream]]\nurl = "https://c.example.org"\npublic-keys = []\n` +
        `[[cache.upstream]]\nurl = "https://d.example.org"\npublic-keys = ["cache.nixos.org-1"]\n`,
    );
    const message = await configError(loadServerConfig({ file, env: {} }));
    assert.match(message, /cache\.upstream\[0\]\.url: expected a URL starting with http:\/\/ or https:\/\/ or file:\/\/, got "s3:\/\/bucket"/);
    assert.match(message, /cache\.upstream\[1\]\.public-keys: expected at least one public key: .*cache\.nixos\.org-1:6NCH/);
    assert.match(message, /cache\.upstream\[2\]\.public-keys\[0\]: expected a Nix public key "name:base64", got "cache\.nixos\.org-1"/);
    const env = await configError(loadServerConfig({ env: { HARMONIA_CI_CACHE_UPSTREAM: `${NIXOS} https://cache.nixos.org` }, cwd: dir }));
    assert.match(env, /environment variable HARMONIA_CI_CACHE_UPSTREAM: expected a table with url and public-keys \(in the environment: a URL followed by its keys\)/);
  });
});

describe('key table', () => {
  it('lists every leaf of the schema, so each has an environment variable', () => {
    type Node = { _zod: { def: { type: string; shape?: Record<string, Node>; innerType?: Node; in?: Node } } };
    const leaves: string[] = [];
    const walk = (node: Node, prefix: string): void => {
      let current = node;
      for (;;) {
        const def = current._zod.def;
        if (def.innerType && ['optional', 'default', 'prefault'].includes(def.type)) current = def.innerType;
        else if (def.type === 'pipe' && def.in && def.in._zod.def.type === 'object') current = def.in;
        else break;
      }
      const shape = current._zod.def.shape;
      if (!shape) return void leaves.push(prefix);
      for (const [key, child] of Object.entries(shape)) walk(child, prefix ? `${prefix}.${key}` : key);
    };
    walk(serverConfigSchema(machineDefaults('/')) as unknown as Node, '');
    assert.deepEqual(leaves.sort(), SERVER_KEYS.map(([key]) => key).sort());
  });
});
