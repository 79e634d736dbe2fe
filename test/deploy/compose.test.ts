/**
 * The fleet files: docker-compose.yml must pass the real compose CLI's validation,
 * and its normalized form (merge keys and anchors resolved by compose itself) must
 * keep each secret in the roles that need it. The Dockerfile is checked for the
 * steps the image depends on.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, it, before } from 'node:test';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../temporal/dev-server.ts';
import { argv, composeFile, conditionOf as dependencyCondition, loadComposeModel, mountsOf, secretsOf, type ComposeModel, type Service } from './compose-model.ts';

const HARMONIA_ROLES = ['api', 'coordinator', 'evaluator', 'signer', 'builder-1', 'builder-2'] as const;
const SERVICES = ['certs', 'postgres', 'temporal', 'temporal-ui', 's3', ...HARMONIA_ROLES] as const;

// Environment names that would carry a credential or point at one.
const CREDENTIAL_ENV = /S3_CREDENTIALS|AWS_|SECRET|TOKEN|PASSWORD|PRIVATE_KEY|SIGNING_KEY|PGPASS/i;

function credentialEnv(service: Service): string[] {
  return Object.keys(service.environment ?? {}).filter((name) => CREDENTIAL_ENV.test(name));
}

function mountsSecretsFolder(service: Service): boolean {
  return (service.volumes ?? []).some((v) => /(^|\/)secrets(\/|$|:)/.test(typeof v === 'string' ? v : (v.source ?? '')));
}

/** A compose duration ("4h15m", "4h15m0s", "90s") in milliseconds. */
function durationMs(value: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  assert.ok(parts.length > 0 && parts.map((p) => p[0]).join('') === value, `'${value}' is not a compose duration`);
  return parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * units[unit as string]!, 0);
}

// What a draining builder may take (workers/main-builder.ts): the build wall clock (limits.build-timeout's
// default) with its margin, then the uploads of those builds.
const BUILD_TIMEOUT_MS = 4 * 3_600_000;
const BUILD_GRACE_MARGIN_MS = 10 * 60_000;
const UPLOAD_WAIT_MS = 5 * 60_000;

describe('docker-compose.yml', () => {
  let cli: string[];
  let model: ComposeModel;

  before(async () => {
    ({ cli, model } = await loadComposeModel());
  });

  it('passes `compose config --quiet`', async () => {
    const [file, ...args] = cli as [string, ...string[]];
    const result = await execa(file, [...args, '-f', composeFile, 'config', '--quiet'], { cwd: PROJECT_ROOT, reject: false });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, '');
  });

  it("gives the Temporal server the dev server's dispatch settings through its dynamic config file", async () => {
    const temporal = model.services.temporal!;
    const path = temporal.environment?.DYNAMIC_CONFIG_FILE_PATH;
    assert.ok(path, 'temporal has DYNAMIC_CONFIG_FILE_PATH');
    const mount = mountsOf(temporal).find((m) => path.startsWith(`${m.target}/`));
    assert.ok(mount?.readOnly, `the folder of ${path} is mounted read-only`);
    assert.equal(mount.source, join(PROJECT_ROOT, 'deploy/temporal'));
    const file = await readFile(join(mount.source, path.slice(mount.target.length + 1)), 'utf8');
    // Fairness needs server 1.32 (the README's "Fair sharing"); partitions are the dev server's own: one machine.
    const cluster = DEV_SERVER_DYNAMIC_CONFIG.filter((setting) => setting.startsWith('history.'));
    assert.ok(cluster.length > 0);
    for (const setting of cluster) {
      const [key, value] = setting.split('=') as [string, string];
      assert.match(file, new RegExp(`^${key.replaceAll('.', '\\.')}:\\n  - value: ${value}$`, 'm'), `${key} is ${value} in ${path}`);
    }
  });

  it('has every service of the fleet, each with an image or a build', () => {
    for (const name of SERVICES) assert.ok(model.services[name], `service ${name} is missing`);
    for (const [name, service] of Object.entries(model.services)) {
      assert.ok(service.image || service.build, `service ${name} has neither image nor build`);
    }
  });

  it('runs every harmonia-ci role from the one image built here', () => {
    const images = new Set(HARMONIA_ROLES.map((role) => model.services[role]?.image));
    assert.equal(images.size, 1, `roles use several images: ${[...images].join(', ')}`);
    for (const role of HARMONIA_ROLES) assert.ok(model.services[role]?.build, `${role} has no build section`);
    assert.match(argv(model.services.api?.command), /^api\b/);
    for (const role of ['coordinator', 'signer'] as const) {
      assert.equal(argv(model.services[role]?.command), `worker ${role}`);
    }
    assert.match(argv(model.services.evaluator?.entrypoint), /harmonia-ci\.mjs worker evaluator\b/);
    for (const builder of ['builder-1', 'builder-2'] as const) {
      const service = model.services[builder] as Service;
      assert.match(`${argv(service.entrypoint)} ${argv(service.command)}`, /harmonia-ci\.mjs worker builder\b/);
    }
  });

  it('mounts the signing key into the signer alone', () => {
    const holders = Object.entries(model.services)
      .filter(([, s]) => secretsOf(s).includes('signing_key') || Object.keys(s.environment ?? {}).some((n) => /SIGNING_KEY/.test(n)))
      .map(([name]) => name);
    assert.deepEqual(holders, ['signer']);
    assert.match(model.secrets?.signing_key?.file ?? '', /secrets\/signing-key$/);
  });

  it('gives the S3 write credential to the signer alone, a read-only one to the api, and none to builders', () => {
    const holders = (secret: string) =>
      Object.entries(model.services)
        .filter(([, s]) => secretsOf(s).includes(secret))
        .map(([name]) => name)
        .sort();
    assert.deepEqual(holders('s3_credentials'), ['signer']);
    assert.deepEqual(holders('s3_read_credentials'), ['api']);
    assert.deepEqual(holders('s3_identities'), ['s3']);
    assert.equal(model.services.api?.environment?.HARMONIA_CI_S3_CREDENTIALS_FILE, '/run/secrets/s3_read_credentials');
    assert.equal(model.services.signer?.environment?.HARMONIA_CI_S3_CREDENTIALS_FILE, '/run/secrets/s3_credentials');
    assert.match(model.secrets?.s3_read_credentials?.file ?? '', /secrets\/s3-read-credentials$/);
  });

  it("gives the README's api identity read and list only, the signer's no more than the cache bucket", async () => {
    const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const line = /^printf '(\{"identities".*)\\n' .*> s3-identities\.json$/m.exec(readme)?.[1];
    assert.ok(line, 'the README writes no s3-identities.json');
    let slot = 0;
    const identities = (JSON.parse(line.replace(/%s/g, () => `v${slot++}`)) as { identities: Array<{ name: string; credentials: Array<{ accessKey: string }>; actions: string[] }> }).identities;
    const byName = new Map(identities.map((i) => [i.name, i]));
    assert.deepEqual(byName.get('api')?.actions, ['Read:harmonia-cache', 'List:harmonia-cache']);
    assert.deepEqual(byName.get('signer')?.actions.sort(), ['List:harmonia-cache', 'Read:harmonia-cache', 'Tagging:harmonia-cache', 'Write:harmonia-cache']);
    assert.notEqual(byName.get('api')?.credentials[0]?.accessKey, byName.get('signer')?.credentials[0]?.accessKey);
    assert.match(model.services.s3?.command ? argv(model.services.s3.command) : '', /-s3\.config=\/run\/secrets\/s3_identities/);
  });

  it('runs the roles without a nix-daemon as an unprivileged user', () => {
    for (const role of ['api', 'coordinator', 'signer', 'migrate'] as const) {
      const user = model.services[role]?.user ?? '';
      assert.match(user, /^[1-9]\d*(:[1-9]\d*)?$/, `${role} runs as ${user || 'root'}`);
    }
    for (const role of ['evaluator', 'builder-1', 'builder-2'] as const) {
      assert.equal(model.services[role]?.user, undefined, `${role} runs its nix-daemon, which owns the store, as root`);
    }
  });

  it('turns the Web UI\'s write actions off', () => {
    assert.equal(String(model.services['temporal-ui']?.environment?.TEMPORAL_DISABLE_WRITE_ACTIONS), 'true');
  });

  it('gives forge credentials to the api and the coordinator only', () => {
    const forgeSecret = (name: string) => /github|gitea|forge/.test(name);
    const holders = Object.entries(model.services)
      .filter(([, s]) => secretsOf(s).some(forgeSecret))
      .map(([name]) => name)
      .sort();
    assert.deepEqual(holders, ['api', 'coordinator']);
  });

  it('gives builders no secrets and no credential variables', () => {
    for (const builder of ['builder-1', 'builder-2'] as const) {
      const service = model.services[builder] as Service;
      assert.deepEqual(secretsOf(service), [], `${builder} mounts secrets`);
      assert.deepEqual(credentialEnv(service), [], `${builder} has credential variables`);
      assert.equal(mountsSecretsFolder(service), false, `${builder} mounts the secrets folder`);
    }
  });

  it('keeps every secret in a file, never inline in the environment', () => {
    for (const [name, service] of Object.entries(model.services)) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        if (!CREDENTIAL_ENV.test(variable)) continue;
        assert.match(String(value), /^\/run\/secrets\//, `${name}: ${variable} should name a file under /run/secrets`);
      }
    }
  });

  it('health-checks the servers and orders start-up on health', () => {
    for (const name of ['postgres', 'temporal', 's3', 'api'] as const) {
      assert.ok(model.services[name]?.healthcheck?.test, `${name} has no healthcheck`);
    }
    const conditionOf = (service: string, dependency: string) => dependencyCondition(model, service, dependency);
    assert.equal(conditionOf('temporal', 'postgres'), 'service_healthy');
    assert.equal(conditionOf('temporal-ui', 'temporal'), 'service_healthy');
    for (const role of ['api', 'coordinator', 'evaluator'] as const) {
      assert.equal(conditionOf(role, 'migrate'), 'service_completed_successfully', `${role} must wait for migrations`);
      assert.equal(conditionOf(role, 'temporal'), 'service_healthy', `${role} must wait for Temporal`);
    }
    for (const role of ['signer', 'builder-1', 'builder-2'] as const) {
      assert.equal(conditionOf(role, 'temporal'), 'service_healthy', `${role} must wait for Temporal`);
    }
  });

  it('lets builders drain on SIGTERM: running builds and their uploads finish before compose kills them', () => {
    for (const builder of ['builder-1', 'builder-2'] as const) {
      const grace = model.services[builder]?.stop_grace_period;
      assert.ok(grace, `${builder} has no stop_grace_period: compose would SIGKILL it 10 s after SIGTERM`);
      assert.ok(durationMs(grace) >= BUILD_TIMEOUT_MS + BUILD_GRACE_MARGIN_MS + UPLOAD_WAIT_MS, `${builder}: ${grace} is shorter than a drain`);
    }
  });

  it('gives each builder its own store volume', () => {
    // v1 prints `source:target:rw`, v2 prints objects: compare source and target only.
    const mounts = (service: string) =>
      (model.services[service]?.volumes ?? []).map((v) => {
        if (typeof v !== 'string') return { source: v.source, target: v.target };
        const [source, target] = v.split(':');
        return { source, target };
      });
    const stores = ['builder-1', 'builder-2'].map((b) => mounts(b).find((m) => m.target === '/nix')?.source);
    assert.ok(stores[0] && stores[1], 'a builder has no volume at /nix');
    assert.notEqual(stores[0], stores[1]);
  });

  it('lets builders and the evaluator work without another host\'s store: a daemon each, our cache, the signer\'s key', () => {
    const mounts = (service: Service) => (service.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':').slice(0, 2) : [v.source, v.target]));
    for (const name of ['evaluator', 'builder-1', 'builder-2'] as const) {
      const service = model.services[name] as Service;
      const line = `${argv(service.entrypoint)} ${argv(service.command)}`;
      assert.match(line, /nix-daemon &/, `${name} runs no nix-daemon of its own`);
      assert.ok(mounts(service).some(([, target]) => target === '/nix'), `${name} has no store volume`);
      // The api serves the cache routes (it holds the S3 credentials); a host reads our cache there.
      assert.equal(service.environment?.HARMONIA_CI_BUILDER_SUBSTITUTERS, 'http://api:8080', `${name} does not read our cache`);
    }
    assert.ok(secretsOf(model.services.api as Service).includes('s3_read_credentials'), 'the api cannot serve the cache');
    for (const name of ['builder-1', 'builder-2'] as const) {
      const service = model.services[name] as Service;
      const keyFile = /--trusted-public-key "\$\$?\(cat ([^)]+)\)"/.exec(argv(service.entrypoint))?.[1];
      assert.ok(keyFile, `${name} trusts no key: its substitutions would all be refused`);
      const mount = (service.volumes ?? []).find((v) => (typeof v === 'string' ? v.split(':')[1] : v.target) === keyFile);
      assert.ok(mount, `${name} reads ${keyFile}, which nothing mounts`);
      assert.match(typeof mount === 'string' ? mount : `${mount.source}`, /cache\.pub/, `${name}'s key file is not the public key`);
    }
  });
});

describe('Dockerfile', () => {
  it('builds a node 20 image with Debian nix, production modules and the CLI entrypoint', async () => {
    const text = await readFile(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    assert.match(text, /^FROM node:20[\w.-]*slim/m);
    assert.match(text, /apt-get install[^\n]*\bnix-bin\b/);
    assert.match(text, /apt-get install[^\n]*\bopenssl\b/, 'the certs service makes certificates with openssl');
    assert.match(text, /apt-get install[^\n]*\bbusybox-static\b/, "a sandbox turned on needs busybox's static /bin/sh");
    assert.match(text, /'sandbox = false'[^\n]*\n[^\n]*'sandbox-fallback = false'/, 'the sandbox is off by default and, turned on, must not fall back');
    assert.match(text, /npm ci --omit=dev/);
    assert.match(text, /^ENTRYPOINT \[.*"node", "[^"]*bin\/harmonia-ci\.mjs"\]/m);
    assert.match(text, /mkdir -p \/var\/lib\/harmonia-ci && chown node:node \/var\/lib\/harmonia-ci/, 'the unprivileged roles need a state directory of their own');
    const ignored = (await readFile(join(PROJECT_ROOT, '.dockerignore'), 'utf8')).split('\n');
    for (const entry of ['node_modules', '.git', 'secrets']) assert.ok(ignored.includes(entry), `.dockerignore lacks ${entry}`);
  });

  it('runs with production modules only: runtime code imports no devDependency', async () => {
    const manifest = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const runtimeDirs = ['api', 'activities', 'bin', 'cli', 'config', 'daemon', 'db', 'lib', 'temporal', 'workers', 'workflows'];
    const missing = new Set<string>();
    for (const dir of runtimeDirs) {
      const files = await readdir(join(PROJECT_ROOT, dir), { recursive: true }).catch(() => [] as string[]);
      for (const file of files.filter((f) => /\.(ts|mjs)$/.test(f))) {
        const source = await readFile(join(PROJECT_ROOT, dir, file), 'utf8');
        for (const [, specifier] of source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^'.][^']*)'/gm)) {
          if (!specifier || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
          const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string);
          if (!manifest.dependencies[name]) missing.add(`${name} (${dir}/${file})`);
        }
      }
    }
    assert.deepEqual([...missing], [], 'these packages are imported at run time but are not in "dependencies"');
  });
});
