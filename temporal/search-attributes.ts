/**
 * The search attributes every harmonia-ci workflow carries, so the Temporal Web UI and
 * `temporal workflow list --query` can filter by project, ref, commit and status.
 *
 * Workflow code takes the typed keys from workflows/search.ts; this module registers them.
 */
import type { SearchAttributeType } from '@temporalio/common';
import { searchAttributeKeys } from '../workflows/search.ts';
import { SearchAttributeError } from './errors.ts';
import { GrpcStatus, grpcStatusOf, messageOf, pollUntil, type TemporalAdminConnection } from './rpc.ts';

/** The typed keys, defined once next to the workflows that set them. */
export const SEARCH_ATTRIBUTES = searchAttributeKeys;

/** Every harmonia-ci search attribute, in a stable order. */
export const ALL_SEARCH_ATTRIBUTES = Object.values(SEARCH_ATTRIBUTES);

// Values of temporal.api.enums.v1.IndexedValueType, which the operator service speaks.
const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

// The spelling the `temporal` CLI accepts in `--search-attribute Name=Type`.
const CLI_TYPE_NAME: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** `--search-attribute Name=Type` arguments for `temporal server start-dev`. */
export function searchAttributeCliFlags(): string[] {
  return ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${CLI_TYPE_NAME[key.type]}`]);
}

async function listCustomAttributes(connection: TemporalAdminConnection, namespace: string, timeoutMs: number): Promise<Record<string, number>> {
  const response = await connection.withDeadline(Date.now() + timeoutMs, () => connection.operatorService.listSearchAttributes({ namespace }));
  const found: Record<string, number> = {};
  for (const [name, type] of Object.entries(response.customAttributes ?? {})) found[name] = Number(type);
  return found;
}

function describeRequired(): string {
  return ALL_SEARCH_ATTRIBUTES.map((key) => `${key.name} (${CLI_TYPE_NAME[key.type]})`).join(', ');
}

/**
 * Registers our search attributes in `namespace` when missing; returns the names it added.
 * Safe to call from several processes at once: "already exists" counts as success.
 */
export async function ensureSearchAttributes(
  connection: TemporalAdminConnection,
  namespace: string,
  options: { timeoutMs?: number } = {},
): Promise<string[]> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const fail = (what: string, error: unknown): SearchAttributeError =>
    new SearchAttributeError(
      `cannot ${what} search attributes in Temporal namespace "${namespace}" (${messageOf(error)}); ` +
        `an operator can register them by hand: ${describeRequired()}.`,
      { cause: error },
    );

  let existing: Record<string, number>;
  try {
    existing = await listCustomAttributes(connection, namespace, timeoutMs);
  } catch (error) {
    throw fail('list', error);
  }
  const missing: Record<string, number> = {};
  for (const key of ALL_SEARCH_ATTRIBUTES) {
    const have = existing[key.name];
    if (have === undefined) missing[key.name] = INDEXED_VALUE_TYPE[key.type];
    else if (have !== INDEXED_VALUE_TYPE[key.type]) {
      throw new SearchAttributeError(
        `search attribute ${key.name} exists in Temporal namespace "${namespace}" with another type; ` +
          `harmonia-ci needs ${CLI_TYPE_NAME[key.type]}. Remove it (temporal operator search-attribute remove) and start again.`,
      );
    }
  }
  const added = Object.keys(missing);
  if (added.length === 0) return [];

  try {
    await connection.withDeadline(Date.now() + timeoutMs, () => connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing }));
  } catch (error) {
    if (grpcStatusOf(error) !== GrpcStatus.ALREADY_EXISTS) throw fail('register', error);
  }
  // Clusters apply new attributes asynchronously; wait until they are listed.
  const visible = await pollUntil(async () => {
    const now = await listCustomAttributes(connection, namespace, timeoutMs);
    return added.every((name) => now[name] !== undefined);
  }, timeoutMs);
  if (!visible) throw fail('confirm', new Error(`not listed after ${timeoutMs} ms`));
  return added;
}
