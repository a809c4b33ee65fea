import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/**
 * Who made a request. Tokens come in three kinds: `admin` (everything), `read` (every read,
 * no admin action) and `account` (reads of one account only). Without a token a request is
 * `public`: pool stats and a given address's stats, as miners expect from a pool site.
 */
export type Principal =
  | { kind: 'public' }
  | { kind: 'admin' | 'read'; tokenId: string; name?: string; expiresAt?: number }
  | { kind: 'account'; tokenId: string; name?: string; account: string; expiresAt?: number };

/** What a route needs. */
export type Access = 'public' | 'read' | 'admin';

export interface Authenticator {
  /** The principal a request's `Authorization: Bearer <token>` names; a bad or revoked token is a 401. */
  authenticate(request: FastifyRequest): Promise<Principal>;
  /** The principal a bare token names (WebSocket subscribe messages, query tokens); 401 when unknown. */
  authenticateToken(token: string): Promise<Principal>;
  /**
   * Calls `listener` with a token id when that token is revoked, in any api instance (within
   * 1 s). Returns a function that stops listening.
   */
  onRevoked(listener: (tokenId: string) => void): () => void;
  close(): Promise<void>;
}

/** 403 unless `principal` may use a route needing `access`. */
export function requireAccess(principal: Principal, access: Access): void {
  if (access === 'public') return;
  if (principal.kind === 'public')
    throw new ApiError(
      401,
      'unauthorized',
      'this needs a token: Authorization: Bearer <token>',
      'authorization',
      'header',
    );
  if (access === 'admin' && principal.kind !== 'admin')
    throw new ApiError(
      403,
      'forbidden',
      `this needs an admin token; the token given is a ${principal.kind} token`,
    );
  if (access === 'read' && principal.kind === 'account')
    throw new ApiError(403, 'forbidden', 'an account token reads only its own account');
}

/** 403 when an account-scoped token asks for another account. */
export function requireAccount(principal: Principal, account: string): void {
  if (principal.kind === 'account' && principal.account !== account)
    throw new ApiError(
      403,
      'forbidden',
      `this token reads only account ${principal.account}`,
      'account',
      'path',
    );
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Equal in constant time (both sides hashed first, so lengths never leak either). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** The bearer token of a request, or undefined; a malformed header is a 401 naming it. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/.exec(header);
  if (!match)
    throw new ApiError(
      401,
      'unauthorized',
      'authorization: expected "Bearer <token>"',
      'authorization',
      'header',
    );
  return match[1];
}

/**
 * The authenticator of the pool's one admin token (`http.adminTokenFile`): that token is admin,
 * no token is public, any other is a 401. Stored tokens extend this (see tokens.ts).
 */
export function staticAuthenticator(adminToken: string | undefined): Authenticator {
  const fromToken = async (token: string): Promise<Principal> => {
    if (adminToken !== undefined && sameSecret(token, adminToken))
      return { kind: 'admin', tokenId: 'pool-admin', name: 'pool admin token' };
    throw new ApiError(401, 'unauthorized', 'unknown or revoked token', 'authorization', 'header');
  };
  return {
    async authenticate(request) {
      const token = bearerToken(request);
      return token === undefined ? { kind: 'public' } : fromToken(token);
    },
    authenticateToken: fromToken,
    onRevoked: () => () => {},
    async close() {},
  };
}
