/**
 * Headers that keep a browser from being turned against the dashboard: a Content Security
 * Policy, `nosniff`, and no framing (clickjacking). An HTML page may run exactly the inline
 * scripts it was rendered with (their SHA-256 hashes are computed from the page itself, so
 * injected markup cannot add one); anything else gets a policy that allows nothing.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** For everything that is not an HTML page: JSON, narinfos, NARs, event streams. */
export const NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const INLINE_SCRIPT = /<script>([\s\S]*?)<\/script>/g;

/** The policy of an HTML page whose inline scripts are `html`'s. */
export function pagePolicy(html: string): string {
  const hashes = [...html.matchAll(INLINE_SCRIPT)].map((m) => `'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`);
  return [
    "default-src 'none'",
    `script-src ${hashes.length > 0 ? hashes.join(' ') : "'none'"}`,
    // Bar widths are style attributes: inline styles, which cannot run code, stay allowed.
    "style-src 'unsafe-inline'",
    "img-src 'self' data:",
    // Live updates: EventSource and fetch to the same origin.
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Adds the headers to every response of `app`. */
export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'same-origin');
    const type = String(reply.getHeader('content-type') ?? '');
    const page = type.startsWith('text/html') && typeof payload === 'string';
    reply.header('content-security-policy', page ? pagePolicy(payload) : NOTHING_POLICY);
    return payload;
  });
}
