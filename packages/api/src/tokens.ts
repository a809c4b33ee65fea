import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, duplicateRedis } from '@hashwire/registry';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type Authenticator, type Principal, bearerToken, sameSecret, sha256Hex } from './auth.js';
import { ApiError } from './errors.js';
import { accountName } from './schemas.js';

export const TOKEN_KINDS = ['admin', 'read', 'account'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** Ten years: an expiry further away is a mistake for "no expiry" (leave expiresInS out). */
const MAX_EXPIRES_IN_S = 10 * 365 * 24 * 3600;

/** What makes a token: the body of `POST /v1/tokens`, and what `hashwire tokens create` checks. */
export const tokenRequest = z
  .object({
    kind: z.enum(TOKEN_KINDS).describe('admin: everything; read: every read; account: one account’s reads'),
    name: z
      .string()
      .regex(/^[^\p{Cc}]{1,100}$/u, 'must be 1–100 characters without control characters')
      .describe('who or what holds it (shown in lists and in the audit trail)'),
    account: accountName.optional().describe('the account an `account` token reads (only for that kind)'),
    expiresInS: z
      .number()
      .int()
      .min(1)
      .max(MAX_EXPIRES_IN_S)
      .optional()
      .describe('seconds until it stops working; absent: until revoked'),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.kind === 'account' && value.account === undefined)
      ctx.addIssue({ code: 'custom', path: ['account'], message: 'required for an account token' });
    if (value.kind !== 'account' && value.account !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['account'],
        message: `only account tokens have one, not ${value.kind}`,
      });
  });
export type TokenRequest = z.infer<typeof tokenRequest>;

/** A stored token as listed: everything but the secret (which is never stored). */
export interface TokenRecord {
  id: string;
  kind: TokenKind;
  name: string;
  account?: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; absent: until revoked. */
  expiresAt?: number;
}

export interface TokenStore {
  /** Makes a token: its text (returned once, never stored) and its record. */
  create(request: TokenRequest): Promise<{ token: string; record: TokenRecord }>;
  /** Every live token, oldest first. */
  list(): Promise<TokenRecord[]>;
  /** Deletes it and tells every api instance (within 1 s); null when there is no such id. */
  revoke(id: string): Promise<TokenRecord | null>;
  /** The record of a token's text, or null (unknown, revoked or expired). */
  lookup(token: string): Promise<TokenRecord | null>;
}

const TOKEN_PREFIX = 'hwt_';

function recordOf(fields: Record<string, string>): TokenRecord | null {
  const { id, kind, name, account, createdAt, expiresAt } = fields;
  if (!id || !name || !TOKEN_KINDS.includes(kind as TokenKind)) return null;
  return {
    id,
    kind: kind as TokenKind,
    name,
    ...(account ? { account } : {}),
    createdAt: Number(createdAt),
    ...(expiresAt ? { expiresAt: Number(expiresAt) } : {}),
  };
}

/**
 * API tokens in Redis, stored by the SHA-256 of the token: a token is 32 random bytes, so its
 * hash cannot be reversed and needs no salt. Every key shares one hash tag, so create and revoke
 * are one transaction on Redis Cluster too.
 */
export function createTokenStore(redis: RedisClient, keys: KeyBuilder): TokenStore {
  const index = keys.tokenIndex();
  return {
    async create(request) {
      const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      const digest = sha256Hex(token);
      const now = Date.now();
      const record: TokenRecord = {
        id: `tok_${randomBytes(9).toString('base64url')}`,
        kind: request.kind,
        name: request.name,
        ...(request.account !== undefined ? { account: request.account } : {}),
        createdAt: now,
        ...(request.expiresInS !== undefined ? { expiresAt: now + request.expiresInS * 1000 } : {}),
      };
      const fields: Record<string, string> = { sha256: digest };
      for (const [field, value] of Object.entries(record)) fields[field] = String(value);
      const tx = redis.multi().hset(keys.token(digest), fields).hset(index, record.id, digest);
      if (record.expiresAt !== undefined) tx.pexpireat(keys.token(digest), record.expiresAt);
      await tx.exec();
      return { token, record };
    },
    async list() {
      const ids = await redis.hgetall(index);
      const entries = Object.entries(ids);
      const pipeline = redis.pipeline();
      for (const [, digest] of entries) pipeline.hgetall(keys.token(digest));
      const answers = entries.length > 0 ? ((await pipeline.exec()) ?? []) : [];
      const records: TokenRecord[] = [];
      const expired: string[] = [];
      for (const [i, [id]] of entries.entries()) {
        const record = recordOf((answers[i]?.[1] ?? {}) as Record<string, string>);
        if (record) records.push(record);
        else expired.push(id);
      }
      // Expired tokens' records went with their key's expiry; their index entries go now.
      if (expired.length > 0) await redis.hdel(index, ...expired);
      return records.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    },
    async revoke(id) {
      const digest = await redis.hget(index, id);
      if (digest === null) return null;
      const answers = (await redis
        .multi()
        .hgetall(keys.token(digest))
        .del(keys.token(digest))
        .hdel(index, id)
        .exec()) as [Error | null, unknown][] | null;
      const record = recordOf((answers?.[0]?.[1] ?? {}) as Record<string, string>);
      // Published even when the record had just expired: an instance may still cache it.
      await redis.publish(keys.tokenRevokedChannel(), id);
      return record;
    },
    async lookup(token) {
      const digest = sha256Hex(token);
      const fields = await redis.hgetall(keys.token(digest));
      const stored = fields.sha256;
      // The key is the hash already; comparing it again, in constant time, keeps a lookup
      // answered by a wrong record (a key collision, a tampered store) from passing.
      if (stored === undefined || stored.length !== digest.length) return null;
      if (!timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(digest, 'hex'))) return null;
      const record = recordOf(fields);
      if (!record || (record.expiresAt !== undefined && record.expiresAt <= Date.now())) return null;
      return record;
    },
  };
}

export function principalOf(record: TokenRecord): Principal {
  return record.kind === 'account'
    ? {
        kind: 'account',
        tokenId: record.id,
        name: record.name,
        account: record.account ?? '',
        ...(record.expiresAt !== undefined && { expiresAt: record.expiresAt }),
      }
    : {
        kind: record.kind,
        tokenId: record.id,
        name: record.name,
        ...(record.expiresAt !== undefined && { expiresAt: record.expiresAt }),
      };
}

export interface TokenAuthenticatorOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** The pool's admin token (`http.adminTokenFile`): always admin, id `pool-admin`. */
  adminToken?: string;
  /**
   * How long a looked-up token is remembered. Revocations still apply within 1 s: they are
   * published, and while that channel is not connected nothing is remembered. @defaultValue 5000
   */
  cacheMs?: number;
}

/** The authenticator of stored tokens, with revoke applied to this instance at once. */
export interface TokenAuthenticator extends Authenticator {
  readonly store: TokenStore;
  /** Revokes through the store and stops the token here before any message comes back. */
  revoke(id: string): Promise<TokenRecord | null>;
  /** Resolves once revocations are being received. */
  readonly ready: Promise<void>;
}

const unauthorized = () =>
  new ApiError(401, 'unauthorized', 'unknown, expired or revoked token', 'authorization', 'header');

/**
 * Stored tokens plus the pool admin token. Lookups are cached for `cacheMs`; a revocation is
 * published on a Redis channel (PUBLISH reaches every node of a Cluster), so every instance
 * drops the token from its cache and tells its `onRevoked` listeners (open streams) at once.
 */
export function createTokenAuthenticator(options: TokenAuthenticatorOptions): TokenAuthenticator {
  const { redis, keys, adminToken } = options;
  const cacheMs = options.cacheMs ?? 5000;
  if (!Number.isFinite(cacheMs) || cacheMs < 0)
    throw new TypeError(`api: tokenCacheMs must be a number of ms ≥ 0, got ${cacheMs}`);
  const store = createTokenStore(redis, keys);
  const cache = new Map<string, { principal: Principal; tokenId: string; until: number }>();
  const listeners = new Set<(tokenId: string) => void>();
  // Ids revoked lately: a lookup that was in flight during the revoke must not cache the token
  // again, and the revoking instance hears its own message after having acted on it.
  const revoked = new Map<string, number>();
  const channel = keys.tokenRevokedChannel();
  const subscriber = duplicateRedis(redis);
  let listening = false;
  const stopListening = () => {
    listening = false;
    cache.clear();
  };
  subscriber.on('close', stopListening);
  subscriber.on('reconnecting', stopListening);
  // ioredis subscribes again on reconnect; the cache is used only once it has.
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(
      () => {
        listening = true;
      },
      () => {},
    );
  });
  const ready = subscriber.subscribe(channel).then(() => {
    listening = true;
  });
  ready.catch(() => {});

  const onRevoked = (id: string) => {
    const now = Date.now();
    for (const [seenId, at] of revoked) if (now - at > 60_000) revoked.delete(seenId);
    if (revoked.has(id)) return;
    revoked.set(id, now);
    for (const [digest, entry] of cache) if (entry.tokenId === id) cache.delete(digest);
    for (const listener of listeners) {
      try {
        listener(id);
      } catch {
        // One listener failing must not keep the others from closing their streams.
      }
    }
  };
  subscriber.on('message', (from: string, id: string) => {
    if (from === channel) onRevoked(id);
  });

  const fromToken = async (token: string): Promise<Principal> => {
    if (adminToken !== undefined && sameSecret(token, adminToken))
      return { kind: 'admin', tokenId: 'pool-admin', name: 'pool admin token' };
    const digest = sha256Hex(token);
    const now = Date.now();
    const hit = cache.get(digest);
    if (hit && hit.until > now && listening) return hit.principal;
    const record = await store.lookup(token);
    if (!record || revoked.has(record.id)) throw unauthorized();
    const principal = principalOf(record);
    if (listening && cacheMs > 0) {
      const until = Math.min(now + cacheMs, record.expiresAt ?? Number.POSITIVE_INFINITY);
      cache.set(digest, { principal, tokenId: record.id, until });
      if (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
    }
    return principal;
  };

  return {
    store,
    ready,
    async authenticate(request: FastifyRequest) {
      const token = bearerToken(request);
      return token === undefined ? { kind: 'public' } : fromToken(token);
    },
    authenticateToken: fromToken,
    onRevoked(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async revoke(id) {
      const record = await store.revoke(id);
      if (record) onRevoked(id);
      return record;
    },
    async close() {
      listeners.clear();
      cache.clear();
      subscriber.disconnect();
    },
  };
}
