/**
 * `harmonia-ci codec-server`: the Temporal Web UI's codec endpoint (api/codec-server.ts), with the
 * payload codec key of the deployment, for a UI whose histories are encrypted.
 */
import type { Command } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import { startCodecServer } from '../../api/codec-server.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { EncryptionCodec, parseCodecKey } from '../../temporal/codec.ts';
import { CliError } from '../errors.ts';
import { withSetupErrorsAsCliErrors } from '../setup-errors.ts';

interface CodecServerOptions {
  config?: string;
  uiOrigin: string;
  host: string;
  port: string;
}

async function serve(options: CodecServerOptions): Promise<void> {
  const config = await loadServerConfig({ env: process.env, file: options.config });
  const keyFile = config.temporal.codecKeyFile;
  if (!keyFile) throw new CliError('the codec endpoint needs the payload key: set temporal.codec-key-file (HARMONIA_CI_TEMPORAL_CODEC_KEY_FILE)');
  let origin: string;
  try {
    origin = new URL(options.uiOrigin).origin;
  } catch {
    throw new CliError(`--ui-origin ${options.uiOrigin} is not a URL: give the Web UI's origin, e.g. https://temporal.example.org`);
  }
  const codec = new EncryptionCodec(parseCodecKey(await keyFile.read(), keyFile.path));
  const log = createLogger({ level: config.log.level, name: 'codec' });
  const server = await startCodecServer({ codec, host: options.host, port: Number(options.port), uiOrigin: origin, log: log as FastifyBaseLogger });
  process.stdout.write(`codec endpoint for the Web UI at ${origin} listening on ${options.host}:${server.port}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}

/** Registers `harmonia-ci codec-server`. */
export function registerCodecServer(program: Command): void {
  program
    .command('codec-server')
    .description("decode encrypted Temporal payloads for the Web UI (its codec endpoint); run it behind the UI's own access control")
    .requiredOption('--ui-origin <url>', 'origin of the Temporal Web UI whose browsers may call it')
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option('--host <address>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '8089')
    .action((options: CodecServerOptions) => withSetupErrorsAsCliErrors(() => serve(options)));
}
