/** From the `[temporal]` section of the server configuration to connection settings. */
import type { TemporalConfig } from '../config/types.ts';
import { EncryptionCodec, parseCodecKey } from './codec.ts';
import type { TemporalConnectionConfig } from './connection.ts';

/** Connection settings for `address` (the configured one, or a dev server's), reading the API key file if any. */
export async function temporalConnectionConfig(temporal: TemporalConfig, address: string): Promise<TemporalConnectionConfig> {
  const { tls, apiKeyFile, codecKeyFile } = temporal;
  return {
    address,
    namespace: temporal.namespace,
    ...(tls && {
      tls: {
        serverRootCaFile: tls.caFile?.path,
        clientCertFile: tls.certFile?.path,
        clientKeyFile: tls.keyFile?.path,
        serverName: tls.serverName,
      },
    }),
    ...(apiKeyFile && { apiKey: await apiKeyFile.read() }),
    ...(codecKeyFile && { codec: new EncryptionCodec(parseCodecKey(await codecKeyFile.read(), codecKeyFile.path)) }),
  };
}
