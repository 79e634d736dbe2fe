/**
 * A throwaway SeaweedFS S3 gateway for tests: `weed mini` (master, volume, filer and S3
 * in one process) on free loopback ports, with one identity so that unsigned or
 * wrongly signed requests are refused, and one bucket created through the S3 API.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { describeExit, spawnManaged, type ManagedProcess } from '../../lib/managed-process.ts';
import { findFreePorts, isAddressInUseMessage, isPortOpen } from '../../lib/ports.ts';
import { locateTool } from '../../lib/tools.ts';

export interface SeaweedS3 {
  /** `http://127.0.0.1:<port>`, to be used path-style. */
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
  /** Starts it again on the same ports and data after stop(): an outage, not a new store. */
  restart(): Promise<void>;
}

export interface SeaweedOptions {
  /** Directory for data, config and logs; removed by the caller. */
  dir: string;
  bucket?: string;
  startTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const MAX_PORT_ATTEMPTS = 3;
// weed puts gRPC Unix sockets at a fixed /tmp path per service and port; they outlive a SIGKILL.
const GRPC_SOCKET_KINDS = ['master', 'volume', 'filer', 's3', 'admin'] as const;

function locateWeed(): string {
  return locateTool({ name: 'weed', envVar: 'HARMONIA_CI_WEED', installHint: '`npm run bootstrap -- test` (run by `npm test`) installs it into .tools/venv' });
}

function weedArgs(dir: string, configFile: string, ports: number[]): string[] {
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc, admin, adminGrpc] = ports.map(String);
  return [
    'mini',
    `-dir=${join(dir, 'data')}`,
    `-ip=${HOST}`,
    `-ip.bind=${HOST}`,
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.telemetry=false',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${join(dir, 'filer.sock')}`,
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.localSocket=${join(dir, 's3.sock')}`,
    `-s3.config=${configFile}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    '-webdav=false',
    '-admin.ui=false',
    `-admin.port=${admin}`,
    `-admin.port.grpc=${adminGrpc}`,
  ];
}

async function removeGrpcSockets(ports: number[]): Promise<void> {
  const grpcPorts = [ports[1], ports[3], ports[5], ports[7], ports[9]];
  await Promise.all(
    GRPC_SOCKET_KINDS.flatMap((kind) => grpcPorts.map((port) => rm(`/tmp/seaweedfs-${kind}-grpc-${port}.sock`, { force: true }))),
  );
}

/** Retries a bucket request (create, or head after a restart) until the volume server has registered and answers. */
async function untilAnswered(client: S3Client, command: CreateBucketCommand | HeadBucketCommand, child: ManagedProcess, deadline: number): Promise<void> {
  for (;;) {
    try {
      await client.send(command as CreateBucketCommand);
      return;
    } catch (error) {
      if (child.hasExited() || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Starts SeaweedFS and resolves once the bucket exists. */
export async function startSeaweedS3(options: SeaweedOptions): Promise<SeaweedS3> {
  const weed = locateWeed();
  const bucket = options.bucket ?? 'harmonia-test';
  const accessKeyId = `HARMONIA${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const region = 'us-east-1';
  const configFile = join(options.dir, 's3-identities.json');
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  await mkdir(join(options.dir, 'data'), { recursive: true });
  // No anonymous identity: every request must be signed with this key.
  const identities = { identities: [{ name: 'harmonia-test', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] }] };
  await writeFile(configFile, JSON.stringify(identities, null, 2), { mode: 0o600 });

  // The first start picks free ports (again if one was taken meanwhile); a restart reuses them.
  const launch = async (ports: number[], createTheBucket: boolean): Promise<{ stop(): Promise<void> }> => {
    const endpoint = `http://${HOST}:${ports[6]}`;
    // TMPDIR: weed writes its glog files there.
    const child = spawnManaged(weed, weedArgs(options.dir, configFile, ports), { env: { ...process.env, TMPDIR: options.dir } });
    const stop = async (): Promise<void> => {
      await child.stop(1000);
      await removeGrpcSockets(ports);
    };
    const deadline = Date.now() + timeoutMs;
    const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
    try {
      while (!(await isPortOpen(HOST, ports[6]!))) {
        if (child.hasExited()) throw new Error(`weed ${describeExit(await child.exited)}`);
        if (Date.now() > deadline) throw new Error(`the S3 port did not open within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await untilAnswered(client, createTheBucket ? new CreateBucketCommand({ Bucket: bucket }) : new HeadBucketCommand({ Bucket: bucket }), child, deadline);
      return { stop };
    } catch (error) {
      await stop();
      const output = child.recentOutput(15);
      throw Object.assign(new Error(`SeaweedFS (${weed} mini) did not become ready: ${error instanceof Error ? error.message : String(error)}. Last output:\n${output || '(none)'}`, { cause: error }), {
        addressInUse: isAddressInUseMessage(output),
      });
    } finally {
      client.destroy();
    }
  };

  for (let attempt = 1; ; attempt++) {
    const ports = await findFreePorts(10, HOST);
    let running: { stop(): Promise<void> } | undefined;
    try {
      running = await launch(ports, true);
    } catch (error) {
      if ((error as { addressInUse?: boolean }).addressInUse && attempt < MAX_PORT_ATTEMPTS) continue;
      throw error;
    }
    return {
      endpoint: `http://${HOST}:${ports[6]}`,
      region,
      bucket,
      accessKeyId,
      secretAccessKey,
      stop: async () => {
        await running?.stop();
        running = undefined;
      },
      restart: async () => {
        if (running) throw new Error('SeaweedFS is running: stop() it before restart()');
        running = await launch(ports, false);
      },
    };
  }
}
