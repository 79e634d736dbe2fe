/**
 * Connecting to Temporal: a Client for starting and inspecting workflows, and a
 * NativeConnection for workers. Both read the same config, so a deployment sets the
 * address, namespace and TLS files once. Failures become TemporalConnectionError with
 * the address and the likely fix, instead of a bare gRPC "14 UNAVAILABLE".
 */
import { readFile } from 'node:fs/promises';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { DataConverter, PayloadCodec } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { TemporalConnectionError, TemporalNamespaceError, TemporalTlsError } from './errors.ts';
import { GrpcStatus, grpcStatusOf, messageOf } from './rpc.ts';

/** TLS for a real cluster. Files are PEM; omit the CA to trust the system roots. */
export interface TemporalTlsOptions {
  /** CA certificate that signed the server's certificate. */
  serverRootCaFile?: string;
  /** Client certificate for mutual TLS (needs clientKeyFile). */
  clientCertFile?: string;
  /** Private key of the client certificate (needs clientCertFile). */
  clientKeyFile?: string;
  /** Name to verify in the server certificate when it differs from the address host. */
  serverName?: string;
}

export interface TemporalConnectionConfig {
  /** Frontend address, `host:port`. */
  address: string;
  namespace: string;
  /** `true` for TLS with system roots, an object for custom CA or mTLS; absent for plaintext. */
  tls?: TemporalTlsOptions | boolean;
  /** API key sent as a bearer token (Temporal Cloud and clusters with an authorizer). */
  apiKey?: string;
  /** How long to wait for the first connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Encrypts payloads (temporal/codec.ts); every client and worker of a deployment needs the same. */
  codec?: PayloadCodec;
}

/** The data converter of clients and workers: the payload codec, when one is configured. */
export function dataConverterOf(config: { codec?: PayloadCodec | undefined }): DataConverter | undefined {
  return config.codec ? { payloadCodecs: [config.codec] } : undefined;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new TemporalTlsError(`cannot read the Temporal ${what} ${path}: ${messageOf(error)}; fix the path in the Temporal TLS settings.`, { cause: error });
  }
}

/** Turns file-based TLS options into the SDK's in-memory TLS config (undefined for plaintext). */
export async function loadTlsConfig(tls: TemporalTlsOptions | boolean | undefined): Promise<TLSConfig | undefined> {
  if (!tls) return undefined;
  if (tls === true) return {};
  const { serverRootCaFile, clientCertFile, clientKeyFile, serverName } = tls;
  if (Boolean(clientCertFile) !== Boolean(clientKeyFile)) {
    throw new TemporalTlsError('Temporal mutual TLS needs both a client certificate file and its key file; set both or neither.');
  }
  const config: TLSConfig = {};
  if (serverName) config.serverNameOverride = serverName;
  if (serverRootCaFile) config.serverRootCACertificate = await readPem(serverRootCaFile, 'server CA certificate');
  if (clientCertFile && clientKeyFile) {
    config.clientCertPair = {
      crt: await readPem(clientCertFile, 'client certificate'),
      key: await readPem(clientKeyFile, 'client key'),
    };
  }
  return config;
}

function connectionFailure(config: TemporalConnectionConfig, error: unknown): TemporalConnectionError {
  const { address } = config;
  const cause = messageOf(error);
  const status = grpcStatusOf(error);
  let hint: string;
  if (status === GrpcStatus.UNAUTHENTICATED || status === GrpcStatus.PERMISSION_DENIED) {
    hint = 'the server refused our credentials: check the client certificate or API key';
  } else if (/ssl|tls|certificate|handshake/i.test(cause)) {
    hint = config.tls
      ? 'the TLS handshake failed: check the CA file, the client certificate and the server name'
      : 'the server seems to want TLS: configure the Temporal TLS settings';
  } else {
    hint =
      'is a Temporal server running there? Start a local one with `harmonia-ci dev` or `temporal server start-dev`, ' +
      'or set TEMPORAL_ADDRESS to your cluster';
  }
  return new TemporalConnectionError(address, `cannot connect to Temporal at ${address} (${cause}); ${hint}.`, { cause: error });
}

/** Opens a client-side gRPC connection and checks that the server answers. */
export async function openTemporalConnection(config: TemporalConnectionConfig): Promise<Connection> {
  const tls = await loadTlsConfig(config.tls);
  // Connection.connect would leave the channel (and its reconnect timers) open on failure.
  const connection = Connection.lazy({ address: config.address, tls, apiKey: config.apiKey, connectTimeout: config.connectTimeoutMs ?? 10_000 });
  try {
    await connection.ensureConnected();
    return connection;
  } catch (error) {
    await connection.close();
    throw connectionFailure(config, error);
  }
}

/** Connects a Client to the configured namespace, failing clearly if the server or namespace is missing. */
export async function connectTemporal(config: TemporalConnectionConfig): Promise<Client> {
  const connection = await openTemporalConnection(config);
  try {
    await connection.withDeadline(Date.now() + (config.connectTimeoutMs ?? 10_000), () =>
      connection.workflowService.describeNamespace({ namespace: config.namespace }),
    );
  } catch (error) {
    await connection.close();
    if (grpcStatusOf(error) === GrpcStatus.NOT_FOUND) {
      throw new TemporalNamespaceError(
        `Temporal at ${config.address} has no namespace "${config.namespace}"; create it with ` +
          `\`temporal operator namespace create ${config.namespace} --address ${config.address}\` or set HARMONIA_CI_TEMPORAL_NAMESPACE.`,
        { cause: error },
      );
    }
    throw connectionFailure(config, error);
  }
  const dataConverter = dataConverterOf(config);
  return new Client({ connection, namespace: config.namespace, ...(dataConverter ? { dataConverter } : {}) });
}

/** Opens the native (Rust core) connection a Worker polls through; close it after the worker stops. */
export async function connectTemporalWorker(config: TemporalConnectionConfig): Promise<NativeConnection> {
  const tls = await loadTlsConfig(config.tls);
  try {
    return await NativeConnection.connect({ address: config.address, tls, apiKey: config.apiKey });
  } catch (error) {
    throw connectionFailure(config, error);
  }
}
