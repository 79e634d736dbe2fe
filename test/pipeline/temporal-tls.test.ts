/**
 * Every role reaching Temporal over mutual TLS: the runner's dev server behind a TLS listener that
 * demands a client certificate signed by the test's CA (the dev server has no TLS of its own), and
 * a pipeline — its client, its workers' native connection, every activity's client — configured
 * only through `temporal.tls.*`. A client without the certificate, or trusting another CA, is
 * refused with an error that says what to check.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer } from 'node:tls';
import { execa } from 'execa';
import { connectTemporal } from '../../temporal/connection.ts';
import { TemporalConnectionError } from '../../temporal/errors.ts';
import { requireEnv } from '../helpers/env.ts';
import { startPipeline, writeJobset, type Pipeline } from './harness.ts';

const SERVER_NAME = 'temporal.harmonia.test';

/** A CA, a server certificate for SERVER_NAME and a client certificate, made by openssl. */
async function makeCertificates(dir: string, prefix = ''): Promise<Record<'ca' | 'caKey' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>> {
  const file = (name: string): string => join(dir, `${prefix}${name}`);
  const openssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=harmonia test CA', '-keyout', file('ca.key'), '-out', file('ca.pem')]);
  for (const [name, subject, extension] of [
    ['server', `/CN=${SERVER_NAME}`, `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`],
    ['client', '/CN=harmonia-ci worker', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`)]);
    await execa('sh', ['-c', `printf '${extension}\\n' > '${file(`${name}.ext`)}'`]);
    await openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`)]);
  }
  return { ca: file('ca.pem'), caKey: file('ca.key'), serverCert: file('server.pem'), serverKey: file('server.key'), clientCert: file('client.pem'), clientKey: file('client.key') };
}

/** A TLS listener on loopback that demands a client certificate from `ca` and passes the bytes to `target`. */
async function tlsProxy(target: string, certs: { ca: string; serverCert: string; serverKey: string }): Promise<{ address: string; accepted: () => number; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer(
    { key: await readFile(certs.serverKey), cert: await readFile(certs.serverCert), ca: await readFile(certs.ca), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
    (secure) => {
      accepted++;
      const plain = connect(port, host);
      sockets.add(plain).add(secure);
      secure.pipe(plain).pipe(secure);
      const end = (): void => {
        secure.destroy();
        plain.destroy();
      };
      secure.on('error', end).on('close', end);
      plain.on('error', end).on('close', end);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: listening } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${listening}`,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        (server as Server).close(() => resolve());
      }),
  };
}

describe('Temporal over mutual TLS', () => {
  let dir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  let proxy: Awaited<ReturnType<typeof tlsProxy>>;
  let pipeline: Pipeline | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hci-temporal-tls-'));
    certs = await makeCertificates(dir);
    proxy = await tlsProxy(requireEnv('TEMPORAL_ADDRESS'), certs);
  });
  after(async () => {
    await pipeline?.close();
    await proxy?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a pipeline whose every connection presents the client certificate', async () => {
    pipeline = await startPipeline({
      env: {
        HARMONIA_CI_TEMPORAL_ADDRESS: proxy.address,
        HARMONIA_CI_TEMPORAL_TLS_CERT_FILE: certs.clientCert,
        HARMONIA_CI_TEMPORAL_TLS_KEY_FILE: certs.clientKey,
        HARMONIA_CI_TEMPORAL_TLS_CA_FILE: certs.ca,
        HARMONIA_CI_TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      },
    });
    const summary = await pipeline.run(await writeJobset(pipeline.dir, { overTls: {}, after: { deps: ['overTls'] } }));
    assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded', 'succeeded']);
    assert.ok(proxy.accepted() >= 2, 'the client and the workers connected through the TLS listener');
  });

  it('is refused without the client certificate, and when trusting another CA', async () => {
    const withoutCertificate = connectTemporal({ address: proxy.address, namespace: 'default', tls: { serverRootCaFile: certs.ca, serverName: SERVER_NAME }, connectTimeoutMs: 5_000 });
    await assert.rejects(withoutCertificate, (error: unknown) => error instanceof TemporalConnectionError && /cannot connect to Temporal at/.test(error.message));

    const other = await makeCertificates(dir, 'other-');
    const wrongCa = connectTemporal({
      address: proxy.address,
      namespace: 'default',
      tls: { serverRootCaFile: other.ca, clientCertFile: certs.clientCert, clientKeyFile: certs.clientKey, serverName: SERVER_NAME },
      connectTimeoutMs: 5_000,
    });
    await assert.rejects(wrongCa, (error: unknown) => error instanceof TemporalConnectionError && /TLS|certificate|handshake|cannot connect/i.test(error.message));
  });
});
