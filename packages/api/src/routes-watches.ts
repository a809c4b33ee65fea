import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { z } from 'zod';
import { audit } from './audit.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { ApiError } from './errors.js';
import { type ApiRoute, noQuery, route } from './route.js';
import { page, pageQuery } from './schemas.js';
import { EndpointError, MAX_ENDPOINT_LENGTH, parseEndpoint } from './watch-endpoint.js';
import { patternProblem } from './watch-pattern.js';
import type { WatchRecord, WatchStore } from './watch-store.js';

/** The longest lifetime a watch may ask for: ten years, in seconds. */
export const MAX_LIFETIME_S = 10 * 365 * 24 * 3600;

const watchIdParam = z
  .string()
  .regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex digits (the id POST /v1/watches answered)')
  .describe('watch id');

const watchBody = z
  .object({
    pattern: z
      .string()
      .superRefine((value, ctx) => {
        const problem = patternProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe(
        'glob over event names: `*` matches any run of characters (dots included); at most 4 `*`, never two in a row; 1–200 characters of A-Z a-z 0-9 . _ : - *',
      ),
    endpoint: z
      .string()
      .max(MAX_ENDPOINT_LENGTH)
      .superRefine((value, ctx) => {
        try {
          parseEndpoint(value);
        } catch (error) {
          if (!(error instanceof EndpointError)) throw error;
          ctx.addIssue({ code: 'custom', message: error.message });
        }
      })
      .describe(
        'http(s)://… (webhook), redis://[:password@]host:port[/db]/channel, amqp://user:pass@host:port/vhost/exchange, mysql://user:pass@host:port/db/table, or ws',
      ),
    lifetime: z
      .number()
      .int()
      .min(1)
      .max(MAX_LIFETIME_S)
      .optional()
      .describe(
        'seconds until the watch is removed by itself; none: until deleted or its endpoint fails for good',
      ),
  })
  .strict();

const watchView = z.object({
  id: z.string(),
  pattern: z.string(),
  endpoint: z.string().describe('the endpoint, any password shown as ***'),
  kind: z.enum(['http', 'redis', 'amqp', 'mysql', 'ws']),
  createdAt: z.number().describe('epoch ms'),
  expiresAt: z.number().nullable().describe('epoch ms its lifetime ends; null without one'),
  topic: z
    .string()
    .nullable()
    .describe('for a ws watch: the live-stream topic it delivers into (`watch:<id>`)'),
  delivery: z.object({
    delivering: z.boolean().describe('an api instance holds it now'),
    failingSince: z.number().nullable().describe('start of the current run of failed attempts, epoch ms'),
    attempts: z.number().describe('failed attempts in that run'),
    lastError: z.string().nullable(),
    cursors: z.record(z.string(), z.string()).describe('last event delivered, per stream'),
  }),
});

type WatchView = z.infer<typeof watchView>;

function view(record: WatchRecord, now: number): WatchView {
  const endpoint = parseEndpoint(record.endpoint);
  return {
    id: record.id,
    pattern: record.pattern,
    endpoint: endpoint.shown,
    kind: endpoint.kind,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    topic: endpoint.kind === 'ws' ? `watch:${record.id}` : null,
    delivery: {
      delivering: record.owner !== '' && record.leaseUntil > now,
      failingSince: record.failSince > 0 ? record.failSince : null,
      attempts: record.attempts,
      lastError: record.lastError,
      cursors: record.cursors,
    },
  };
}

/** A watch as the API shows it: gone, being removed and past its lifetime are all "no such watch". */
function live(record: WatchRecord | null, now: number): record is WatchRecord {
  return record !== null && record.removed === null && (record.expiresAt === null || record.expiresAt > now);
}

export interface WatchRouteDeps {
  redis: RedisClient;
  keys: KeyBuilder;
  store: WatchStore;
  /** Called after a watch was created, so delivery starts without waiting for a lease round. */
  onCreated?: () => void;
}

export function watchRoutes({ redis, keys, store, onCreated }: WatchRouteDeps): ApiRoute[] {
  const notFound = (id: string) => new ApiError(404, 'not_found', `no watch ${id}`, 'id', 'path');
  return [
    route({
      method: 'POST',
      url: '/v1/watches',
      summary: 'Register a watch (201), or get the same one registered before (200)',
      tag: 'watches',
      access: 'admin',
      params: z.object({}),
      query: noQuery,
      json: watchBody,
      response: watchView,
      handler: async ({ body, principal, reply }) => {
        const endpoint = parseEndpoint(body.endpoint);
        const { created, record } = await store.create(
          body.pattern,
          endpoint.canonical,
          (body.lifetime ?? 0) * 1000,
        );
        if (created) {
          await audit(redis, keys, principal, 'watch.create', record.id, {
            pattern: record.pattern,
            endpoint: endpoint.shown,
          });
          onCreated?.();
        }
        void reply.status(created ? 201 : 200);
        return view(record, Date.now());
      },
    }),
    route({
      method: 'GET',
      url: '/v1/watches',
      summary: 'The watches, by id',
      tag: 'watches',
      access: 'admin',
      params: z.object({}),
      query: pageQuery,
      response: page(watchView),
      handler: async ({ query }) => {
        const after = decodeCursor(query.cursor, ['string'])?.[0] as string | undefined;
        const now = Date.now();
        const items: WatchView[] = [];
        let next: string | null = null;
        for (const id of await store.ids()) {
          if (after !== undefined && id <= after) continue;
          const record = await store.get(id);
          if (!live(record, now)) continue;
          if (items.length === query.limit) {
            next = encodeCursor([items[items.length - 1]?.id as string]);
            break;
          }
          items.push(view(record, now));
        }
        return { items, next };
      },
    }),
    route({
      method: 'GET',
      url: '/v1/watches/:id',
      summary: 'One watch and how its delivery goes',
      tag: 'watches',
      access: 'admin',
      params: z.object({ id: watchIdParam }),
      query: noQuery,
      response: watchView,
      errors: { 404: 'no such watch' },
      handler: async ({ params }) => {
        const record = await store.get(params.id);
        const now = Date.now();
        if (!live(record, now)) throw notFound(params.id);
        return view(record, now);
      },
    }),
    route({
      method: 'DELETE',
      url: '/v1/watches/:id',
      summary: 'Remove a watch (a `watch.removed` event says so)',
      tag: 'watches',
      access: 'admin',
      params: z.object({ id: watchIdParam }),
      query: noQuery,
      response: watchView,
      errors: { 404: 'no such watch' },
      handler: async ({ params, principal }) => {
        const now = Date.now();
        const record = await store.get(params.id);
        if (!live(record, now)) throw notFound(params.id);
        const removed = await store.remove(params.id, 'deleted');
        if (!removed) throw notFound(params.id);
        const shown = view(record, now);
        await audit(redis, keys, principal, 'watch.delete', params.id, {
          pattern: shown.pattern,
          endpoint: shown.endpoint,
        });
        return shown;
      },
    }),
  ];
}
