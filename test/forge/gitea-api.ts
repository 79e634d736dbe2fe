/**
 * The part of Gitea's published API (templates/swagger/v1_json.tmpl, `/api/v1`) that harmonia-ci
 * uses: each operation's path, query parameters and body fields (`GET /user`: userGetCurrent), transcribed from the swagger
 * definitions (CreateStatusOption, CreateHookOption, EditHookOption, CommitStatusState), so a
 * captured request can be checked against them.
 */
import { Ajv } from 'ajv';
import type { CapturedRequest } from './openapi.ts';

const PAGING = ['page', 'limit'];
const HOOK_TYPES = ['dingtalk', 'discord', 'gitea', 'gogs', 'msteams', 'slack', 'telegram', 'feishu', 'wechatwork', 'packagist'];
// CreateHookOptionConfig: string values; "content_type" and "url" are required.
const hookConfig = { type: 'object', required: ['content_type', 'url'], additionalProperties: { type: 'string' } };
const hookFields = {
  config: hookConfig,
  events: { type: 'array', items: { type: 'string' } },
  branch_filter: { type: 'string' },
  active: { type: 'boolean' },
  authorization_header: { type: 'string' },
};

interface GiteaOperation {
  method: string;
  path: string;
  query?: string[];
  body?: Record<string, unknown>;
}

const OPERATIONS: GiteaOperation[] = [
  { method: 'GET', path: '/user', query: [] },
  { method: 'GET', path: '/user/repos', query: PAGING },
  { method: 'GET', path: '/user/orgs', query: PAGING },
  { method: 'GET', path: '/orgs/{org}/repos', query: PAGING },
  { method: 'GET', path: '/repos/{owner}/{repo}/hooks', query: PAGING },
  {
    method: 'POST',
    path: '/repos/{owner}/{repo}/hooks',
    body: { type: 'object', required: ['type', 'config'], additionalProperties: false, properties: { type: { enum: HOOK_TYPES }, ...hookFields } },
  },
  { method: 'PATCH', path: '/repos/{owner}/{repo}/hooks/{id}', body: { type: 'object', additionalProperties: false, properties: hookFields } },
  { method: 'DELETE', path: '/repos/{owner}/{repo}/hooks/{id}' },
  {
    method: 'POST',
    path: '/repos/{owner}/{repo}/statuses/{sha}',
    body: {
      type: 'object',
      additionalProperties: false,
      properties: {
        context: { type: 'string' },
        description: { type: 'string' },
        state: { enum: ['pending', 'success', 'error', 'failure', 'warning'] },
        target_url: { type: 'string' },
      },
    },
  },
  { method: 'GET', path: '/repos/{owner}/{repo}/pulls/{index}' },
  { method: 'GET', path: '/repos/{owner}/{repo}/collaborators/{collaborator}/permission' },
  { method: 'GET', path: '/repos/{owner}/{repo}/git/commits/{sha}', query: ['stat', 'verification', 'files'] },
  { method: 'GET', path: '/repos/{owner}/{repo}/branches/{branch}' },
];

const ajv = new Ajv({ strict: false, allErrors: true });
const INTEGER_PARAMS = new Set(['id', 'index']);

/** Problems with the request according to Gitea's API; empty when it conforms. */
export function giteaApiViolations(request: CapturedRequest): string[] {
  const label = `${request.method} ${request.path}`;
  for (const op of OPERATIONS) {
    if (op.method !== request.method) continue;
    const names: string[] = [];
    const pattern = new RegExp(`^${op.path.replace(/\{([^}]+)\}/g, (_, name: string) => (names.push(name), '([^/]+)'))}$`);
    const match = pattern.exec(request.path);
    if (!match) continue;
    const problems: string[] = [];
    names.forEach((name, i) => {
      if (INTEGER_PARAMS.has(name) && !/^\d+$/.test(match[i + 1]!)) problems.push(`${label}: ${name} must be an integer`);
    });
    for (const name of request.query.keys()) {
      if (!(op.query ?? []).includes(name)) problems.push(`${label}: query parameter ${name} is not declared`);
    }
    if (op.body === undefined && request.body !== undefined) problems.push(`${label}: the operation takes no body`);
    if (op.body !== undefined) {
      const validate = ajv.compile(op.body);
      if (!validate(request.body)) problems.push(`${label}: body ${ajv.errorsText(validate.errors)}`);
    }
    return problems;
  }
  return [`${label}: no such operation in Gitea's API`];
}
