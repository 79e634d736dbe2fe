/**
 * The compose fleet reaches Temporal over mutual TLS with encrypted payloads: the one-shot `certs`
 * service runs first, Temporal demands client certificates, each role mounts its own certificate
 * and the codec key read-only, and the CA key stays in `certs`. The script `certs` runs
 * (deploy/compose-certs.sh) is run here for real: its certificates verify against its CA for the
 * purposes they serve, complete a mutual TLS handshake, and a second run changes nothing.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { parseCodecKey } from '../../temporal/codec.ts';
import { argv, conditionOf, loadComposeModel, mountsOf, type ComposeModel, type Mount, type Service } from './compose-model.ts';

const TEMPORAL_CLIENTS = ['api', 'coordinator', 'evaluator', 'signer', 'builder-1', 'builder-2'] as const;
const SCRIPT = 'deploy/compose-certs.sh';

/** The mount of `service` whose target holds `file`. */
function mountHolding(service: Service, file: string): Mount | undefined {
  return mountsOf(service).find((m) => file.startsWith(`${m.target}/`));
}

describe('docker-compose.yml: Temporal over mutual TLS', () => {
  let model: ComposeModel;
  let certs: Service;
  /** Volume name → the directory `certs` fills in it (relative to the root it is given). */
  let certsDirs: Map<string, string>;
  let certsRoot: string;

  before(async () => {
    ({ model } = await loadComposeModel());
    certs = model.services.certs as Service;
    assert.ok(certs, 'there is no certs service');
    const entrypoint = Array.isArray(certs.entrypoint) ? certs.entrypoint : [];
    certsRoot = entrypoint[entrypoint.length - 1] ?? '';
    certsDirs = new Map(mountsOf(certs).map((m) => [m.source, posix.relative(certsRoot, m.target)]));
  });

  it('runs certs once, first, from the image built here', () => {
    assert.equal(certs.restart, 'no');
    assert.equal(certs.depends_on, undefined, 'certs waits for something: it should run first');
    assert.equal(certs.image, model.services.api?.image);
    assert.match(argv(certs.entrypoint), new RegExp(`^/bin/sh /opt/harmonia-ci/${SCRIPT} /`));
    const users = Object.entries(model.services).filter(([name, s]) => name !== 'certs' && mountsOf(s).some((m) => certsDirs.has(m.source)));
    assert.ok(users.length >= TEMPORAL_CLIENTS.length + 2, 'too few services use what certs makes');
    for (const [name] of users) assert.equal(conditionOf(model, name, 'certs'), 'service_completed_successfully', `${name} does not wait for certs`);
  });

  it('mounts the CA key into no long-running service', () => {
    const caVolumes = [...certsDirs].filter(([, dir]) => dir === 'ca').map(([volume]) => volume);
    assert.equal(caVolumes.length, 1, 'certs keeps its CA in no volume of its own');
    const holders = Object.entries(model.services).filter(([, s]) => mountsOf(s).some((m) => caVolumes.includes(m.source)));
    assert.deepEqual(holders.map(([name]) => name), ['certs']);
  });

  it('has Temporal require client certificates from that CA, and its healthcheck present one', () => {
    const temporal = model.services.temporal as Service;
    const env = temporal.environment ?? {};
    assert.equal(String(env.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH), 'true');
    const files = ['TEMPORAL_TLS_SERVER_CA_CERT', 'TEMPORAL_TLS_SERVER_CERT', 'TEMPORAL_TLS_SERVER_KEY', 'TEMPORAL_TLS_FRONTEND_CERT', 'TEMPORAL_TLS_FRONTEND_KEY', 'TEMPORAL_TLS_CLIENT1_CA_CERT'];
    for (const name of files) {
      const mount = mountHolding(temporal, String(env[name] ?? ''));
      assert.ok(mount?.readOnly, `${name} (${env[name]}) is on no read-only mount`);
      assert.equal(certsDirs.get(mount.source), 'temporal', `${name} is not in the volume certs fills for the server`);
    }
    for (const name of ['TEMPORAL_TLS_FRONTEND_SERVER_NAME', 'TEMPORAL_TLS_INTERNODE_SERVER_NAME']) assert.equal(env[name], 'temporal', name);
    const health = argv(temporal.healthcheck?.test);
    for (const flag of ['--tls-cert-path', '--tls-key-path', '--tls-ca-path']) {
      const file = new RegExp(`${flag} (\\S+)`).exec(health)?.[1] ?? '';
      assert.ok(mountHolding(temporal, file), `the healthcheck's ${flag} (${file || 'missing'}) is not mounted`);
    }
    assert.match(health, /--tls-server-name temporal\b/);
  });

  it('gives the Web UI a client certificate of its own and has it verify the server', () => {
    const ui = model.services['temporal-ui'] as Service;
    const env = ui.environment ?? {};
    for (const name of ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY']) {
      const mount = mountHolding(ui, String(env[name] ?? ''));
      assert.ok(mount?.readOnly, `${name} is on no read-only mount`);
      assert.equal(certsDirs.get(mount.source), 'temporal-ui');
    }
    assert.equal(String(env.TEMPORAL_TLS_ENABLE_HOST_VERIFICATION), 'true');
    assert.equal(env.TEMPORAL_TLS_SERVER_NAME, 'temporal');
  });

  it('gives every role its own certificate, the CA and the codec key, read-only, and nothing else of certs', () => {
    const issued = new Set((Array.isArray(certs.command) ? certs.command : []).map(String));
    const codecVolume = [...certsDirs].find(([, dir]) => dir === 'codec')?.[0];
    assert.ok(codecVolume, 'certs writes the codec key to no volume');
    const seen = new Set<string>();
    for (const role of TEMPORAL_CLIENTS) {
      const service = model.services[role] as Service;
      const env = service.environment ?? {};
      assert.equal(env.HARMONIA_CI_TEMPORAL_TLS_SERVER_NAME, 'temporal', role);
      const tls = new Set<string>();
      for (const name of ['CERT_FILE', 'KEY_FILE', 'CA_FILE']) {
        const file = String(env[`HARMONIA_CI_TEMPORAL_TLS_${name}`] ?? '');
        const mount = mountHolding(service, file);
        assert.ok(mount?.readOnly, `${role}: HARMONIA_CI_TEMPORAL_TLS_${name} (${file || 'unset'}) is on no read-only mount`);
        tls.add(mount.source);
      }
      assert.equal(tls.size, 1, `${role} reads its TLS files from several volumes`);
      const [volume] = tls as Set<string>;
      const dir = certsDirs.get(volume as string) ?? '';
      assert.ok(issued.has(dir), `${role}'s volume ${volume} gets no certificate from certs (${dir || 'not mounted there'})`);
      assert.ok(!seen.has(dir), `${role} shares its certificate`);
      seen.add(dir);
      const codec = mountHolding(service, String(env.HARMONIA_CI_TEMPORAL_CODEC_KEY_FILE ?? ''));
      assert.ok(codec?.readOnly && codec.source === codecVolume, `${role} has no read-only codec key`);
      const fromCerts = mountsOf(service).filter((m) => certsDirs.has(m.source)).map((m) => m.source);
      assert.deepEqual(fromCerts.sort(), [volume, codecVolume].sort(), `${role} mounts more of what certs makes than it needs`);
      // A role's certificate volume is its own: no other service but certs mounts it.
      const sharers = Object.entries(model.services).filter(([name, s]) => name !== role && name !== 'certs' && mountsOf(s).some((m) => m.source === volume));
      assert.deepEqual(sharers.map(([name]) => name), [], `${role}'s certificate is mounted elsewhere`);
    }
  });
});

describe(`${SCRIPT}`, () => {
  let dir: string;
  let root: string;
  const clients = ['temporal-ui', 'api', 'builder-1'];
  const run = () => execa('sh', [join(PROJECT_ROOT, SCRIPT), root, ...clients], { env: { PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}` } });
  const openssl = (args: string[]) => execa('openssl', args, { cwd: root });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hci-compose-certs-'));
    root = join(dir, 'certs');
    // The image has `harmonia-ci` on PATH; here it is the checkout's CLI.
    await execa('mkdir', ['-p', join(dir, 'bin')]);
    await writeFile(join(dir, 'bin', 'harmonia-ci'), `#!/bin/sh\nexec node ${join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs')} "$@"\n`);
    await chmod(join(dir, 'bin', 'harmonia-ci'), 0o755);
    await run();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('issues a server certificate for `temporal` and one client certificate per name, all from its CA', async () => {
    const ca = join(root, 'ca', 'ca.crt');
    await openssl(['verify', '-CAfile', ca, '-purpose', 'sslserver', join(root, 'temporal', 'tls.crt')]);
    // The server's own workers present it to the frontend: it must be a client certificate too.
    await openssl(['verify', '-CAfile', ca, '-purpose', 'sslclient', join(root, 'temporal', 'tls.crt')]);
    const san = (await openssl(['x509', '-in', join(root, 'temporal', 'tls.crt'), '-noout', '-ext', 'subjectAltName'])).stdout;
    assert.match(san, /DNS:temporal\b/);
    for (const client of clients) {
      await openssl(['verify', '-CAfile', ca, '-purpose', 'sslclient', join(root, client, 'tls.crt')]);
      assert.match((await openssl(['x509', '-in', join(root, client, 'tls.crt'), '-noout', '-subject'])).stdout, new RegExp(`CN ?= ?${client}$`, 'm'));
      assert.equal(await readFile(join(root, client, 'ca.crt'), 'utf8'), await readFile(ca, 'utf8'));
      const server = await execa('openssl', ['verify', '-CAfile', ca, '-purpose', 'sslserver', join(root, client, 'tls.crt')], { reject: false });
      assert.notEqual(server.exitCode, 0, `${client}'s certificate could serve as a server`);
    }
    parseCodecKey(await readFile(join(root, 'codec', 'codec.key'), 'utf8'), 'codec.key');
    const caFiles = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('ca.key'));
    assert.deepEqual(caFiles, [join('ca', 'ca.key')], 'the CA key is outside the CA directory');
  });

  it('lets the owner (uid 1000) alone read the keys', { skip: process.getuid?.() !== 0 && 'chown needs root' }, async () => {
    for (const file of ['temporal/tls.key', 'api/tls.key', 'codec/codec.key']) {
      const info = await stat(join(root, file));
      assert.equal(info.uid, 1000, file);
      assert.equal(info.mode & 0o077, 0, `${file} is readable by others`);
    }
  });

  it('completes a mutual TLS handshake between the server certificate and a client one, and only then', async () => {
    const read = (path: string) => readFile(join(root, path));
    const server = createServer({ key: await read('temporal/tls.key'), cert: await read('temporal/tls.crt'), ca: await read('temporal/ca.crt'), requestCert: true, rejectUnauthorized: true }, (s) => s.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    // What the server answers, or the error that ended the connection.
    const talk = (options: { servername: string; key?: Buffer; cert?: Buffer }): Promise<string> =>
      new Promise((resolve) => {
        const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, ...options });
        let data = '';
        socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
        socket.on('end', () => resolve(data || 'closed'));
        socket.on('error', (error: Error) => resolve(`error: ${error.message}`));
      });
    const ca = await read('api/ca.crt');
    try {
      assert.equal(await talk({ servername: 'temporal', key: await read('api/tls.key'), cert: await read('api/tls.crt') }), 'ok');
      assert.notEqual(await talk({ servername: 'temporal' }), 'ok', 'a client without a certificate was served');
      assert.match(await talk({ servername: 'elsewhere', key: await read('api/tls.key'), cert: await read('api/tls.crt') }), /^error: .*(altnames|Hostname)/i);
    } finally {
      server.close();
    }
  });

  it('changes nothing when run again', async () => {
    const snapshot = async () => {
      const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      return Object.fromEntries(await Promise.all(files.map(async (e) => [join(e.parentPath, e.name), (await readFile(join(e.parentPath, e.name))).toString('base64')] as const)));
    };
    const before = await snapshot();
    const again = await run();
    assert.doesNotMatch(again.stdout, /created|issued/);
    assert.deepEqual(await snapshot(), before);
    assert.ok(Object.keys(before).some((f) => dirname(f).endsWith('builder-1')));
  });
});
