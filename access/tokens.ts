/**
 * API tokens: a random 32-byte secret shown once (`hci_<base64url>`), of which only the SHA-256
 * is stored. Looking a token up by its hash is safe against timing (an attacker who could time it
 * learns bits of a hash, not of the token), and the hash found is compared again in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import type { ForgeKind } from '../forges/types.ts';
import { RIGHTS, type Right } from './rights.ts';

const PREFIX = 'hci_';
const TOKEN = /^hci_[A-Za-z0-9_-]{43}$/;

export interface TokenOwner {
  forge: ForgeKind;
  login: string;
}

export interface CreatedToken {
  id: string;
  /** The secret itself: shown once, never stored. */
  token: string;
  expiresAt: string | null;
}

export interface TokenRecord extends TokenOwner {
  id: string;
  scope: Right;
}

function hashOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Creates a token for `owner` with at most `scope`, expiring at `expiresAt` (never when null). */
export async function createToken(
  pool: Pool,
  options: TokenOwner & { scope: Right; expiresAt: Date | null; description?: string },
): Promise<CreatedToken> {
  const token = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  const { rows } = await pool.query<{ id: string; expires_at: Date | null }>(
    `INSERT INTO api_tokens (forge, login, scope, token_hash, description, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, expires_at`,
    [options.forge, options.login, options.scope, hashOf(token), options.description ?? '', options.expiresAt],
  );
  const row = rows[0]!;
  return { id: String(row.id), token, expiresAt: row.expires_at?.toISOString() ?? null };
}

/** The live token `token` is, or undefined when it is malformed, unknown, revoked or expired. */
export async function verifyToken(pool: Pool, token: string): Promise<TokenRecord | undefined> {
  if (!TOKEN.test(token)) return undefined;
  const hash = hashOf(token);
  const { rows } = await pool.query<{ id: string; forge: ForgeKind; login: string; scope: Right; token_hash: Buffer }>(
    `UPDATE api_tokens SET last_used_at = now()
      WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      RETURNING id, forge, login, scope, token_hash`,
    [hash],
  );
  const row = rows[0];
  if (!row || !timingSafeEqual(row.token_hash, hash) || !RIGHTS.includes(row.scope)) return undefined;
  return { id: String(row.id), forge: row.forge, login: row.login, scope: row.scope };
}

/** Revokes a token by id (only one of `owner`'s when given); false when there is no such live token. */
export async function revokeToken(pool: Pool, id: string, owner?: TokenOwner): Promise<boolean> {
  if (!/^\d{1,18}$/.test(id)) return false;
  const { rowCount } = await pool.query(
    `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
        AND ($2::text IS NULL OR (forge = $2 AND lower(login) = lower($3)))`,
    [id, owner?.forge ?? null, owner?.login ?? null],
  );
  return rowCount === 1;
}

export interface TokenListing extends TokenRecord {
  description: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

/** Live tokens, newest first (only `owner`'s when given). */
export async function listTokens(pool: Pool, owner?: TokenOwner): Promise<TokenListing[]> {
  const { rows } = await pool.query<{
    id: string;
    forge: ForgeKind;
    login: string;
    scope: Right;
    description: string;
    created_at: Date;
    expires_at: Date | null;
    last_used_at: Date | null;
  }>(
    `SELECT id, forge, login, scope, description, created_at, expires_at, last_used_at FROM api_tokens
      WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
        AND ($1::text IS NULL OR (forge = $1 AND lower(login) = lower($2))) ORDER BY id DESC`,
    [owner?.forge ?? null, owner?.login ?? null],
  );
  return rows.map((r) => ({
    id: String(r.id),
    forge: r.forge,
    login: r.login,
    scope: r.scope,
    description: r.description,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at?.toISOString() ?? null,
    lastUsedAt: r.last_used_at?.toISOString() ?? null,
  }));
}
