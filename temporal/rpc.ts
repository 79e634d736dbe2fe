/**
 * Small helpers shared by the setup calls (namespace, search attributes). Errors from the
 * client Connection and the worker's NativeConnection both carry a numeric gRPC `code`;
 * reading it structurally keeps this module free of runtime SDK imports, so workflow
 * code may import modules that depend on it.
 */
import type { OperatorService, WorkflowService } from '@temporalio/client';

/** gRPC status codes the setup code reacts to. */
export const GrpcStatus = {
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** What the setup calls need: satisfied by both a client Connection and a worker NativeConnection. */
export interface TemporalAdminConnection {
  readonly workflowService: WorkflowService;
  readonly operatorService: OperatorService;
  withDeadline<R>(deadline: number | Date, fn: () => Promise<R>): Promise<R>;
}

/** The gRPC status code of an error thrown by a Temporal service call, if it has one. */
export function grpcStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The message of any thrown value, for embedding in our own error messages. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Calls `check` every `intervalMs` until it returns true or `timeoutMs` passes; returns the last answer. */
export async function pollUntil(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() + intervalMs > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
