/**
 * Deployment targets (`[[deployments]]` in the server configuration, never in a repository: a
 * repository must not choose where its code runs). Each says: when `job` succeeds on `ref` of
 * `project`, deploy its output to `environment` through the agent at `agent-url`.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { camelize } from './camelize.ts';
import { duration, matching, text, url } from './fields.ts';
import { SecretFile } from './secrets.ts';

const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PUBLIC_KEY = /^[^:\s]+:[A-Za-z0-9+/]{43}=$/;

export const deploymentTargetSchema = z
  .strictObject({
  project: text('a project name, as `harmonia-ci projects` lists it'),
  environment: matching(ENVIRONMENT, 'an environment name such as "production" (letters, digits, . _ -)'),
  // A branch name is taken as refs/heads/<name>.
  ref: text('a git ref such as "main" or "refs/heads/main"').transform((ref) => (ref.startsWith('refs/') ? ref : `refs/heads/${ref}`)),
  job: text('a job attribute, e.g. "nixosConfigurations.web.config.system.build.toplevel"'),
  'agent-url': url(['http', 'https']),
  // Absolute: the coordinator that reads it may run anywhere, and list entries are not resolved against the file.
  'secret-file': text('the absolute path of a file holding the secret shared with the agent')
    .refine((path) => isAbsolute(path), { error: 'expected an absolute path, e.g. "/run/secrets/deploy-web-1"' })
    .transform((path) => new SecretFile('deployments.secret-file', path)),
  // Where the agent's host fetches the closure, and the key it trusts; default the API's own cache and key.
  'cache-url': url(['http', 'https']).optional(),
  'public-key': matching(PUBLIC_KEY, 'a Nix public key "name:base64"').optional(),
  approval: z.boolean({ error: 'expected true or false' }).default(false),
  // How long the agent may take to report once it accepted the request.
  timeout: duration().prefault('30m'),
  })
  .transform((target) => camelize(target));

export const deploymentsSchema = z
  .array(deploymentTargetSchema, { error: 'expected a list of [[deployments]] tables' })
  .default([])
  .superRefine((targets, ctx) => {
    const seen = new Set<string>();
    for (const [index, target] of targets.entries()) {
      const key = `${target.project}\n${target.environment}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [index, 'environment'], message: `${target.project} has two deployments to ${target.environment}` });
      seen.add(key);
    }
  });
