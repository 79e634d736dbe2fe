/**
 * Namespace setup for a self-hosted cluster: harmonia-ci registers its namespace when
 * missing so a fresh cluster needs no manual step. (The dev server creates it from
 * `--namespace` at launch; Temporal Cloud namespaces are created in the Cloud console.)
 */
import { msToTs } from '@temporalio/common/lib/time.js';
import { TemporalNamespaceError } from './errors.ts';
import { GrpcStatus, grpcStatusOf, messageOf, pollUntil, type TemporalAdminConnection } from './rpc.ts';

export interface EnsureNamespaceOptions {
  /** How long closed workflow histories are kept (default 7 days). */
  retentionDays?: number;
  /** How long to wait for a new namespace to become usable (default 30 s). */
  timeoutMs?: number;
}

async function namespaceExists(connection: TemporalAdminConnection, namespace: string): Promise<boolean> {
  try {
    await connection.withDeadline(Date.now() + 10_000, () => connection.workflowService.describeNamespace({ namespace }));
    return true;
  } catch (error) {
    if (grpcStatusOf(error) === GrpcStatus.NOT_FOUND) return false;
    throw error;
  }
}

async function namespaceUsable(connection: TemporalAdminConnection, namespace: string): Promise<boolean> {
  try {
    await connection.withDeadline(Date.now() + 10_000, () => connection.workflowService.countWorkflowExecutions({ namespace }));
    return true;
  } catch (error) {
    if (grpcStatusOf(error) === GrpcStatus.NOT_FOUND) return false;
    throw error;
  }
}

/** Registers `namespace` if it does not exist and waits until it answers; returns true if it registered it. */
export async function ensureNamespace(connection: TemporalAdminConnection, namespace: string, options: EnsureNamespaceOptions = {}): Promise<boolean> {
  const retentionDays = options.retentionDays ?? 7;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const fail = (what: string, error: unknown): TemporalNamespaceError =>
    new TemporalNamespaceError(
      `cannot ${what} Temporal namespace "${namespace}" (${messageOf(error)}); ` +
        `create it with \`temporal operator namespace create ${namespace}\` and check that our credentials may manage namespaces.`,
      { cause: error },
    );

  try {
    if (await namespaceExists(connection, namespace)) return false;
  } catch (error) {
    throw fail('describe', error);
  }
  let registered = true;
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection.workflowService.registerNamespace({
        namespace,
        description: 'harmonia-ci workflows',
        workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
      }),
    );
  } catch (error) {
    // Another process registered it first: that is the state we wanted.
    if (grpcStatusOf(error) !== GrpcStatus.ALREADY_EXISTS) throw fail('register', error);
    registered = false;
  }
  // describeNamespace reads the database, but other calls go through the frontend's namespace
  // registry, which refreshes periodically and remembers a miss for about a second: probe
  // with one of those (countWorkflowExecutions, a plain read) until it knows the namespace.
  let ready: boolean;
  try {
    ready = await pollUntil(() => namespaceUsable(connection, namespace), timeoutMs, 250);
  } catch (error) {
    throw fail('use the new', error);
  }
  if (!ready) throw fail('use the new', new Error(`still unknown after ${timeoutMs} ms`));
  return registered;
}
