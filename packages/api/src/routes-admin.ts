import { type KeyBuilder, SERVICE_KINDS } from '@hashwire/protocol';
import { type RedisClient, getService } from '@hashwire/registry';
import { z } from 'zod';
import { audit } from './audit.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { ApiError } from './errors.js';
import { type ApiRoute, noQuery, route } from './route.js';
import { page, pageQuery } from './schemas.js';
import { TOKEN_KINDS, type TokenAuthenticator, tokenRequest } from './tokens.js';

export interface AdminContext {
  redis: RedisClient;
  keys: KeyBuilder;
  auth: TokenAuthenticator;
  /** The pool admin token, sent to a service's `POST /drain`. */
  adminToken?: string;
  /** @defaultValue 10000 */
  drainTimeoutMs?: number;
}

const tokenRecord = z.object({
  id: z.string(),
  kind: z.enum(TOKEN_KINDS),
  name: z.string(),
  account: z.string().optional(),
  createdAt: z.number().describe('epoch ms'),
  expiresAt: z.number().optional().describe('epoch ms; absent: until revoked'),
});

const tokenId = z
  .string()
  .regex(/^tok_[A-Za-z0-9_-]{12}$/, 'must be a token id as GET /v1/tokens lists it (tok_ and 12 characters)')
  .describe('the token’s id (not the token)');

const auditEvent = z.object({
  seq: z.string().describe('the event’s id in the pool stream'),
  ts: z.number().describe('epoch ms'),
  type: z.string().describe('admin.<action>'),
  actor: z.object({ tokenId: z.string(), name: z.string().optional(), kind: z.enum(TOKEN_KINDS) }),
  target: z.string().optional(),
  data: z.record(z.string(), z.unknown()).describe('the whole event payload'),
});

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
/** Entries one audit page reads at most: a page may hold fewer items than asked, `next` goes on. */
const AUDIT_SCAN_LIMIT = 20_000;

function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // Not JSON: the text itself.
  }
  return body.trim().slice(0, 300);
}

export function adminRoutes(ctx: AdminContext): ApiRoute[] {
  const { redis, keys, auth } = ctx;
  return [
    route({
      method: 'POST',
      url: '/v1/tokens',
      summary: 'Makes an API token; the answer is the only time the token is shown',
      tag: 'admin',
      access: 'admin',
      params: z.object({}),
      query: noQuery,
      json: tokenRequest,
      response: tokenRecord.extend({ token: z.string().describe('the token: keep it, it is not stored') }),
      handler: async ({ body, principal, reply }) => {
        const { token, record } = await auth.store.create(body);
        await audit(redis, keys, principal, 'token.create', record.id, {
          kind: record.kind,
          name: record.name,
          ...(record.account !== undefined && { account: record.account }),
        });
        void reply.code(201);
        return { ...record, token };
      },
    }),
    route({
      method: 'GET',
      url: '/v1/whoami',
      summary: 'What the request’s token may do: its kind (`public` without one), name and account',
      tag: 'admin',
      params: z.object({}),
      query: noQuery,
      response: z.object({
        kind: z.enum(['public', 'admin', 'read', 'account']),
        tokenId: z.string().optional(),
        name: z.string().optional(),
        account: z.string().optional(),
      }),
      // The dashboard asks this to decide which actions to show, without a refused request.
      handler: async ({ principal }) => ({ ...principal }),
    }),
    route({
      method: 'GET',
      url: '/v1/tokens',
      summary: 'The stored API tokens (ids, kinds, names; never the tokens)',
      tag: 'admin',
      access: 'admin',
      params: z.object({}),
      query: noQuery,
      response: z.object({ tokens: z.array(tokenRecord) }),
      handler: async () => ({ tokens: await auth.store.list() }),
    }),
    route({
      method: 'DELETE',
      url: '/v1/tokens/:id',
      summary: 'Revokes a token: every api instance refuses it, and closes its streams, within 1 s',
      tag: 'admin',
      access: 'admin',
      params: z.object({ id: tokenId }).strict(),
      query: noQuery,
      response: z.object({ revoked: tokenRecord }),
      errors: { 404: 'no such token' },
      handler: async ({ params, principal }) => {
        const record = await auth.revoke(params.id);
        if (!record)
          throw new ApiError(
            404,
            'not_found',
            `path id: no token ${params.id} (GET /v1/tokens lists them)`,
            'id',
            'path',
          );
        await audit(redis, keys, principal, 'token.revoke', record.id, {
          kind: record.kind,
          name: record.name,
        });
        return { revoked: record };
      },
    }),
    route({
      method: 'POST',
      url: '/v1/services/:kind/:id/drain',
      summary: 'Drains a live service through its status server (POST /drain), as `hashwire drain` does',
      tag: 'admin',
      access: 'admin',
      params: z
        .object({
          kind: z.enum(SERVICE_KINDS),
          id: z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, 'must be 1–200 characters of A-Z a-z 0-9 . _ : -'),
        })
        .strict(),
      query: noQuery,
      response: z.object({
        kind: z.string(),
        id: z.string(),
        draining: z.literal(true).describe('the service accepted (202); it leaves discovery when done'),
      }),
      errors: {
        404: 'no such live service',
        502: 'the service refused or did not answer (error.message says what it said)',
        503: 'this api instance has no pool admin token to drain with',
      },
      handler: async ({ params, principal, reply }) => {
        const { kind, id } = params;
        const target = `${kind} ${id}`;
        const service = await getService(redis, keys, kind, id);
        if (!service)
          throw new ApiError(
            404,
            'not_found',
            `path id: no live ${kind} ${id} (GET /v1/services lists them)`,
            'id',
            'path',
          );
        if (!ctx.adminToken)
          throw new ApiError(
            503,
            'unavailable',
            'this api instance has no pool admin token (http.adminTokenFile / adminToken) to drain with',
          );
        if (!service.http)
          throw new ApiError(502, 'bad_gateway', `${target} publishes no http endpoint to drain through`);
        let status: number;
        let text: string;
        try {
          const answer = await fetch(`${service.http}/drain`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ctx.adminToken}` },
            signal: AbortSignal.timeout(ctx.drainTimeoutMs ?? 10_000),
          });
          status = answer.status;
          text = await answer.text();
        } catch (error) {
          const reason = `${service.http}/drain did not answer: ${(error as Error).message}`;
          await audit(redis, keys, principal, 'drain', target, { outcome: 'unreachable', reason });
          throw new ApiError(502, 'bad_gateway', `${target}: ${reason}`);
        }
        if (status !== 202) {
          const reason = `${service.http}/drain answered ${status}: ${errorText(text)}`;
          await audit(redis, keys, principal, 'drain', target, { outcome: 'refused', reason });
          throw new ApiError(502, 'bad_gateway', `${target} refused the drain: ${reason}`);
        }
        await audit(redis, keys, principal, 'drain', target, { outcome: 'started' });
        void reply.code(202);
        return { kind, id, draining: true as const };
      },
    }),
    route({
      method: 'GET',
      url: '/v1/audit',
      summary: 'The audit trail: admin.* events (who did what), newest first',
      tag: 'admin',
      access: 'admin',
      params: z.object({}),
      query: pageQuery,
      response: page(auditEvent),
      handler: async ({ query }) => {
        const key = keys.poolEvents();
        const after = decodeCursor(query.cursor, ['string']);
        if (after && !STREAM_ID.test(String(after[0])))
          throw new ApiError(
            400,
            'bad_request',
            'query cursor: not a cursor this list gave',
            'cursor',
            'query',
          );
        let start = after ? `(${after[0]}` : '+';
        const items: z.infer<typeof auditEvent>[] = [];
        let scanned = 0;
        let lastSeen: string | null = null;
        const batch = Math.max(query.limit * 4, 200);
        for (;;) {
          const entries = (await redis.xrevrange(key, start, '-', 'COUNT', batch)) as [string, string[]][];
          for (const [seq, fields] of entries) {
            lastSeen = seq;
            scanned++;
            const field = (name: string) => {
              const i = fields.indexOf(name);
              return i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
            };
            const type = field('type') ?? '';
            if (!type.startsWith('admin.')) continue;
            let data: Record<string, unknown> = {};
            try {
              data = JSON.parse(field('data') ?? '{}') as Record<string, unknown>;
            } catch {
              // A malformed entry is listed with what it has.
            }
            const actor = (data.actor ?? { tokenId: 'unknown', kind: 'admin' }) as z.infer<
              typeof auditEvent
            >['actor'];
            items.push({
              seq,
              ts: Number(field('ts')),
              type,
              actor,
              ...(typeof data.target === 'string' && { target: data.target }),
              data,
            });
            if (items.length === query.limit) return { items, next: encodeCursor([seq]) };
          }
          if (entries.length < batch) return { items, next: null };
          if (scanned >= AUDIT_SCAN_LIMIT) return { items, next: lastSeen ? encodeCursor([lastSeen]) : null };
          start = `(${lastSeen}`;
        }
      },
    }),
  ];
}
