/**
 * The authorization server half of the test forge: the authorization code grant of RFC 6749
 * (§4.1) with PKCE (RFC 7636, S256) at `/login/oauth/authorize` and `/login/oauth/access_token`,
 * where GitHub and Gitea serve it. Requests that break the RFCs are recorded as violations; a
 * wrong or reused code is answered as the RFC says (`invalid_grant`) so tests can provoke one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface OAuthApp {
  clientId: string;
  clientSecret: string;
  /** The callback registered with the application: authorize and token requests must name it. */
  redirectUri: string;
}

export interface OAuthServer {
  handle(request: IncomingMessage, url: URL, body: string, response: ServerResponse): void;
  /** The login an `Authorization: Bearer|token <access token>` stands for. */
  userOf(authorization: string | undefined): string | undefined;
}

interface Grant {
  user: string;
  redirectUri: string;
  challenge: string;
}

export function createOAuthServer(app: OAuthApp, currentUser: () => string | undefined, violations: string[]): OAuthServer {
  const codes = new Map<string, Grant>();
  const tokens = new Map<string, string>();
  const json = (response: ServerResponse, status: number, data: unknown): void => {
    response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    response.end(JSON.stringify(data));
  };

  const authorize = (url: URL, response: ServerResponse): void => {
    const q = url.searchParams;
    const problems = [
      q.get('response_type') === 'code' ? null : 'response_type must be "code"',
      q.get('client_id') === app.clientId ? null : `client_id ${q.get('client_id')} is not the application's`,
      q.get('redirect_uri') === app.redirectUri ? null : `redirect_uri ${q.get('redirect_uri')} is not the registered ${app.redirectUri}`,
      q.get('state') ? null : 'state is missing (CSRF protection of the callback)',
      q.get('code_challenge_method') === 'S256' && /^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? '') ? null : 'expected an S256 code_challenge',
    ].filter((p): p is string => p !== null);
    if (problems.length > 0) {
      violations.push(...problems.map((p) => `GET /login/oauth/authorize: ${p}`));
      return json(response, 400, { error: 'invalid_request', error_description: problems.join('; ') });
    }
    const user = currentUser();
    const target = new URL(app.redirectUri);
    if (!user) {
      target.searchParams.set('error', 'access_denied');
    } else {
      const code = randomBytes(16).toString('hex');
      codes.set(code, { user, redirectUri: app.redirectUri, challenge: q.get('code_challenge')! });
      target.searchParams.set('code', code);
    }
    target.searchParams.set('state', q.get('state')!);
    response.writeHead(302, { location: target.toString() });
    response.end();
  };

  const token = (request: IncomingMessage, body: string, response: ServerResponse): void => {
    const label = 'POST /login/oauth/access_token';
    if (!String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      violations.push(`${label}: the body must be application/x-www-form-urlencoded`);
      return json(response, 400, { error: 'invalid_request' });
    }
    const form = new URLSearchParams(body);
    const basic = /^Basic (.+)$/i.exec(request.headers.authorization ?? '');
    const [id, secret] = basic
      ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').map((part) => decodeURIComponent(part.replace(/\+/g, ' ')))
      : [form.get('client_id'), form.get('client_secret')];
    if (form.get('grant_type') !== 'authorization_code') violations.push(`${label}: grant_type must be authorization_code`);
    if (id !== app.clientId || secret !== app.clientSecret) return json(response, 401, { error: 'invalid_client' });
    const code = form.get('code') ?? '';
    const grant = codes.get(code);
    codes.delete(code);
    if (!grant) return json(response, 400, { error: 'invalid_grant', error_description: 'unknown or used code' });
    if (form.get('redirect_uri') !== grant.redirectUri) violations.push(`${label}: redirect_uri differs from the authorization request's`);
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
      return json(response, 400, { error: 'invalid_grant', error_description: 'code_verifier does not match code_challenge' });
    }
    const access = `gho_${randomBytes(16).toString('hex')}`;
    tokens.set(access, grant.user);
    json(response, 200, { access_token: access, token_type: 'bearer', scope: '' });
  };

  return {
    handle(request, url, body, response) {
      if (request.method === 'GET' && url.pathname === '/login/oauth/authorize') return authorize(url, response);
      if (request.method === 'POST' && url.pathname === '/login/oauth/access_token') return token(request, body, response);
      json(response, 404, { message: 'Not Found' });
    },
    userOf(authorization) {
      const match = /^(?:bearer|token) (.+)$/i.exec(authorization ?? '');
      return match ? tokens.get(match[1]!) : undefined;
    },
  };
}
