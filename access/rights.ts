/**
 * Rights on a project, shared by the API (which enforces them) and the command line (which
 * issues tokens scoped by them): read (see it when private), write (cancel, rebuild), admin
 * (enable, disable, settings). They mirror the forge's permissions: none < read < write < admin.
 */
import type { RepoPermission } from '../forges/types.ts';

export type Right = 'read' | 'write' | 'admin';
export const RIGHTS: readonly Right[] = ['read', 'write', 'admin'];

const RANK: Record<RepoPermission, number> = { none: 0, read: 1, write: 2, admin: 3 };

/** Whether `held` includes `wanted`. */
export function includes(held: RepoPermission, wanted: RepoPermission): boolean {
  return RANK[held] >= RANK[wanted];
}

/** The lesser of two permissions. */
export function lesser(a: RepoPermission, b: RepoPermission): RepoPermission {
  return RANK[a] <= RANK[b] ? a : b;
}
