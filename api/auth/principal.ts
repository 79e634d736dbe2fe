/**
 * Who is asking: a person logged in with a forge, or an API token acting for one. Rights come
 * from the forge's collaborator permission, capped by a token's scope; operators (`auth.admins`)
 * hold every right.
 */
import type { Right } from '../../access/rights.ts';
import type { ForgeKind } from '../../forges/types.ts';

export interface Principal {
  forge: ForgeKind;
  login: string;
  /** Named in `auth.admins`. */
  operator: boolean;
  /** `session`, or `token:<id>` for an API token. */
  via: string;
  /** A token's scope: the most it may do, whatever the person's rights. Null for a session. */
  scope: Right | null;
}

/** `github:alice`: how people are named in `auth.admins` and the audit log. */
export function principalName(principal: Pick<Principal, 'forge' | 'login'>): string {
  return `${principal.forge}:${principal.login}`;
}
