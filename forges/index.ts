/** The forges this server is configured for, built from the `[forges]` section. */
import type { ForgesConfig } from '../config/types.ts';
import { ForgeNotConfiguredError } from './errors.ts';
import { createGiteaClient } from './gitea.ts';
import { createGitHubClient } from './github.ts';
import type { Forges } from './types.ts';

export type * from './types.ts';
export { EVAL_CONTEXT, BUILD_CONTEXT } from './types.ts';

/** Clients for the configured forges; secret files are read when a request needs them. */
export function createForges(config: ForgesConfig): Forges {
  const github = config.github
    ? createGitHubClient({
        apiUrl: config.github.apiUrl,
        ...(config.github.appId === undefined ? {} : { appId: config.github.appId }),
        ...(config.github.privateKeyFile ? { privateKeyFile: config.github.privateKeyFile } : {}),
        ...(config.github.tokenFile ? { tokenFile: config.github.tokenFile } : {}),
      })
    : undefined;
  const gitea = config.gitea
    ? createGiteaClient({
        url: config.gitea.url,
        tokenFile: config.gitea.tokenFile,
        ...(config.gitea.webhookSecretFile ? { webhookSecretFile: config.gitea.webhookSecretFile } : {}),
      })
    : undefined;
  return {
    ...(github ? { github } : {}),
    ...(gitea ? { gitea } : {}),
    get(kind) {
      const client = kind === 'github' ? github : kind === 'gitea' ? gitea : undefined;
      if (!client) throw new ForgeNotConfiguredError(kind);
      return client;
    },
  };
}
