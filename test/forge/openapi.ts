/**
 * Checks a captured request against GitHub's official OpenAPI description (@octokit/openapi):
 * the path and method must be an operation, path and query parameters declared and of the
 * declared type, required ones present, and a JSON body valid against the operation's schema
 * with no field the schema does not declare.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';

export interface CapturedRequest {
  method: string;
  /** Path without the API prefix, e.g. `/repos/o/r/statuses/abc`. */
  path: string;
  query: URLSearchParams;
  body: unknown;
}

type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  parameters?: Array<Parameter | { $ref: string }>;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
}
interface Spec {
  paths: Record<string, Record<string, Operation | Array<Parameter | { $ref: string }>>>;
  components: Record<string, Record<string, unknown>>;
}

let cached: { spec: Spec; ajv: Ajv; routes: Array<{ template: string; pattern: RegExp; params: string[] }> } | undefined;

function load() {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('@octokit/openapi/package.json'));
  const spec = JSON.parse(readFileSync(join(dir, 'generated', 'api.github.com.json'), 'utf8')) as Spec;
  const ajv = new Ajv({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
  ajv.addSchema({ components: spec.components }, 'spec');
  const routes = Object.keys(spec.paths)
    .map((template) => {
      const params: string[] = [];
      const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name: string) => {
        params.push(name);
        return '([^/]+)';
      });
      return { template, pattern: new RegExp(`^${source}$`), params };
    })
    // Literal segments win over parameters (`/user/repos` before `/users/{username}`-like templates).
    .sort((a, b) => a.params.length - b.params.length);
  cached = { spec, ajv, routes };
  return cached;
}

/** Problems with the request according to GitHub's OpenAPI description; empty when it conforms. */
export function githubOpenApiViolations(request: CapturedRequest): string[] {
  const { spec, ajv, routes } = load();
  const label = `${request.method} ${request.path}`;
  const route = routes.find((r) => r.pattern.test(request.path) && spec.paths[r.template]?.[request.method.toLowerCase()]);
  if (!route) return [`${label}: no such operation in GitHub's OpenAPI description`];
  const item = spec.paths[route.template]!;
  const operation = item[request.method.toLowerCase()] as Operation;
  const problems: string[] = [];
  const parameters = [...((item.parameters as Parameter[] | undefined) ?? []), ...(operation.parameters ?? [])].map((p) => resolve<Parameter>(spec, p));

  const values = route.pattern.exec(request.path)!.slice(1).map((v) => decodeURIComponent(v));
  route.params.forEach((name, i) => {
    const declared = parameters.find((p) => p.in === 'path' && p.name === name);
    if (!declared) problems.push(`${label}: path parameter ${name} is not declared`);
    else problems.push(...checkValue(ajv, declared, values[i]!, label));
  });
  for (const [name, value] of request.query) {
    const declared = parameters.find((p) => p.in === 'query' && p.name === name);
    if (!declared) problems.push(`${label}: query parameter ${name} is not declared`);
    else problems.push(...checkValue(ajv, declared, value, label));
  }
  for (const p of parameters) {
    if (p.in === 'query' && p.required && !request.query.has(p.name)) problems.push(`${label}: required query parameter ${p.name} missing`);
  }

  const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
  if (request.body !== undefined && !bodySchema) problems.push(`${label}: the operation takes no JSON body`);
  if (request.body === undefined && operation.requestBody?.required) problems.push(`${label}: the operation requires a JSON body`);
  if (bodySchema && request.body !== undefined) {
    const schema = rebase(bodySchema) as Schema;
    const validate = ajv.compile(schema);
    if (!validate(request.body)) problems.push(`${label}: body ${ajv.errorsText(validate.errors)}`);
    const declared = (resolve<Schema>(spec, bodySchema).properties ?? {}) as Schema;
    for (const field of Object.keys((request.body ?? {}) as object)) {
      if (!(field in declared)) problems.push(`${label}: body field ${field} is not in the schema`);
    }
  }
  return problems;
}

function checkValue(ajv: Ajv, parameter: Parameter, raw: string, label: string): string[] {
  const schema = (parameter.schema ?? {}) as Schema;
  const value = schema.type === 'integer' || schema.type === 'number' ? Number(raw) : schema.type === 'boolean' ? raw === 'true' : raw;
  const validate = ajv.compile(rebase(schema) as Schema);
  return validate(value) ? [] : [`${label}: parameter ${parameter.name}=${raw} ${ajv.errorsText(validate.errors)}`];
}

function resolve<T>(spec: Spec, node: unknown): T {
  const ref = (node as { $ref?: string }).$ref;
  if (!ref) return node as T;
  const [, section, name] = /^#\/components\/([^/]+)\/(.+)$/.exec(ref) ?? [];
  return resolve<T>(spec, spec.components[section!]![name!]);
}

/** Local `#/components/…` references point into the schema registered as `spec`. */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, key === '$ref' && typeof value === 'string' ? `spec${value}` : rebase(value)]),
  );
}
