import { randomUUID } from 'node:crypto';
import rateLimitPlugin from '@fastify/rate-limit';
import {
  type Logger,
  type Metrics,
  type StatsdOptions,
  type StatusServer,
  createLogger,
  createMetrics,
  isWildcardHost,
  packageVersion,
  startStatusServer,
} from '@hashwire/core';
import { type KeyBuilder, POOL_STREAM, createKeyBuilder } from '@hashwire/protocol';
import {
  type RedisClient,
  type RedisConfig,
  type ServiceRegistration,
  connectRedis,
  createRateMeter,
  registerService,
  requireRedisVersion,
} from '@hashwire/registry';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Authenticator } from './auth.js';
import { ApiError } from './errors.js';
import { createEventTail } from './event-tail.js';
import { type ApiPort, checkApiPort, listenFirstFree } from './listen.js';
import type { ApiChain } from './read.js';
import { observeRequests } from './request-metrics.js';
import { type ApiRoute, noQuery, openApiDocument, registerRoutes, requestPrincipal, route } from './route.js';
import { adminRoutes } from './routes-admin.js';
import { defaultDashboardDir, registerDashboardRoutes } from './routes-dashboard.js';
import { groupRoutes } from './routes-groups.js';
import { type StratumFront, operatorRoutes } from './routes-operator.js';
import { readRoutes } from './routes-read.js';
import { registerStreamRoute } from './routes-stream.js';
import { watchRoutes } from './routes-watches.js';
import { type TokenAuthenticator, createTokenAuthenticator } from './tokens.js';
import { createDeliverers } from './watch-deliver.js';
import { createWatchStore } from './watch-store.js';
import { type WatchWorkerStats, createWatchWorker } from './watch-worker.js';

/** How watches are delivered (see docs/watches.md). */
export interface ApiWatchOptions {
  /** Deliver watches from this instance (any number of instances may). @defaultValue true */
  deliver?: boolean;
  /** How long a failing endpoint is retried before its watch is removed, ms. @defaultValue 14400000 (4 h) */
  retryWindowMs?: number;
  /** First retry delay, doubled on each further failure, ms. @defaultValue 1000 */
  retryBaseMs?: number;
  /** Longest delay between two attempts, ms. @defaultValue 600000 (10 min) */
  retryMaxDelayMs?: number;
  /** Delivery lease of a watch; a dead instance's watches move after this, ms. @defaultValue 10000 */
  leaseMs?: number;
  /** One delivery's time limit (connect and answer), ms. @defaultValue 10000 */
  deliveryTimeoutMs?: number;
  /** Entries a `ws` watch's outbox stream keeps (approximately). @defaultValue 10000 */
  outboxMaxLen?: number;
}

export interface ApiServiceOptions {
  /** Instance id, unique among api instances; its registry entry is `svc:{api}:<id>`. */
  id: string;
  /** A client (left open on close) or how to connect (closed on close). */
  redis: RedisClient | RedisConfig;
  /** @defaultValue createKeyBuilder() (prefix `hw:`) */
  keys?: KeyBuilder;
  /** The pool's chains, their algorithms (for hashrates) and how each pays (for the balances). */
  chains: readonly ApiChain[];
  /** Address of the API. @defaultValue '127.0.0.1' */
  host?: string;
  /** Port of the API, or `[first, last]` (the first free one is bound); 0 takes any free port. @defaultValue 8080 */
  port?: ApiPort;
  /** Host written into the registered URL when `host` is a wildcard. @defaultValue '127.0.0.1' */
  advertiseHost?: string;
  /**
   * Let anyone write membership groups (join, heartbeat, leave, configs) from anywhere. Without
   * it a write needs a read or admin token, except one straight from loopback (no
   * `X-Forwarded-For`/`Forwarded`) to an api listening on loopback (the seed's curl
   * walkthrough on one machine). Reading a group is always public. @defaultValue false
   */
  openGroups?: boolean;
  /**
   * Requests per window, per token (by its id) or, without a token, per client address; shared
   * by every api instance (counted in Redis). Over it: 429 with Retry-After. `false`: no limit.
   * @defaultValue { max: 600, windowMs: 60000 }
   */
  rateLimit?: { max?: number; windowMs?: number } | false;
  /**
   * Trust `X-Forwarded-For` from these proxies (HAProxy's address) for the client address the
   * rate limit counts by. @defaultValue false
   */
  trustProxy?: boolean | string | string[];
  /** Largest request body (membership metadata and configs), bytes. @defaultValue 65536 */
  maxBodyBytes?: number;
  /** `/healthz`, `/stats`, `/metrics` (and `POST /drain`): the first free port of this range. @defaultValue [29000, 29999] */
  httpPortRange?: readonly [number, number];
  /** @defaultValue '127.0.0.1' */
  httpHost?: string;
  onDrain?: () => void;
  /**
   * The pool's admin token (`http.adminTokenFile`): `POST /drain` of this instance needs it, it
   * is an admin token of the API, and the API drains other services with it. Without it
   * `/drain` is refused and the API's drain route answers 503.
   */
  adminToken?: string;
  /**
   * How long an instance remembers a looked-up API token. Revocation still applies everywhere
   * within 1 s (it is published to every instance). @defaultValue 5000
   */
  tokenCacheMs?: number;
  /** @defaultValue 60000 */
  serviceTtlMs?: number;
  /** Watches: retry window, leases, time limits. */
  watches?: ApiWatchOptions;
  /** Live stream (`GET /v1/stream`) limits. */
  stream?: ApiStreamOptions;
  /**
   * The dashboard's built folder (`index.html` and its assets), served at `/`, `/account/<address>`
   * and `/operator`; `false` serves no dashboard. @defaultValue the `dist` of `@hashwire/dashboard`
   */
  dashboardDir?: string | false;
  /**
   * HAProxy's runtime API socket on this host (the pool config's `haproxy.statsSocket`): admins
   * read its servers at `GET /v1/haproxy`. Without one that route answers 503.
   */
  haproxyStatsSocket?: string;
  /**
   * Where miners connect: each chain's public stratum addresses at HAProxy (`host:port`; an empty
   * host or a wildcard means "the host the client reached the api at"), answered by
   * `GET /v1/connect`. `hashwire up` passes the pool config's `chains[].bind` and `tlsBind`.
   */
  stratumFronts?: StratumFront[];
  version?: string;
  logger?: Logger;
  metrics?: Metrics | { statsd?: StatsdOptions };
}

export interface ApiStreamOptions {
  /** Bytes queued to one socket past which it is closed as a slow consumer (4008). @defaultValue 4194304 */
  maxBufferedBytes?: number;
  /** Live events held for a socket while it takes a snapshot or catches up. @defaultValue 10000 */
  maxPendingEvents?: number;
  /** Topics one connection may hold. @defaultValue 1000 */
  maxTopicsPerConnection?: number;
  /** How often a live connection is told its positions when nothing it takes happened, ms. @defaultValue 1000 */
  checkpointMs?: number;
  /** Ping interval; a socket that missed the previous pong is dropped, ms. @defaultValue 30000 */
  pingMs?: number;
  /** Largest message a client may send, bytes. @defaultValue 65536 */
  maxMessageBytes?: number;
}

export interface ApiStats {
  id: string;
  version: string;
  url: string | null;
  state: 'created' | 'up' | 'draining' | 'closed';
  /** Answers by status class. */
  responses: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  /** This instance's watch deliveries (null when it delivers none). */
  watches: WatchWorkerStats | null;
  /** Live stream: open connections, distinct filters indexed, topics held. */
  stream: { connections: number; filters: number; topics: number };
}

export interface ApiService {
  readonly id: string;
  /** `http://host:port` of the API once started. */
  readonly url: string | null;
  readonly logger: Logger;
  /** Who a request or token is; `onRevoked` tells when a token is revoked on any instance (streams close on it). */
  readonly authenticator: TokenAuthenticator;
  /** Listens, registers as `api` (with its URL as `api`). */
  start(): Promise<void>;
  /** Leaves discovery (so it is no longer an endpoint) and stops taking connections. */
  drain(): Promise<void>;
  close(): Promise<void>;
  stats(): ApiStats;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function isRedisClient(value: ApiServiceOptions['redis']): value is RedisClient {
  return typeof value === 'object' && value !== null && typeof (value as RedisClient).evalsha === 'function';
}

/** Fastify's own refusals (body parsing, size, URL) as a 4xx naming the input. */
function fromFastify(error: FastifyError): ApiError {
  const status =
    error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
  if (status === 500) return new ApiError(500, 'internal', 'internal error');
  const code = error.code ?? '';
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new ApiError(413, 'too_large', `body: larger than the limit (${error.message})`, 'body', 'body');
  if (code.startsWith('FST_ERR_CTP'))
    return new ApiError(status, 'bad_request', `body: ${error.message}`, 'body', 'body');
  if (code === 'FST_ERR_BAD_URL')
    return new ApiError(400, 'bad_request', `path: ${error.message}`, 'path', 'path');
  return new ApiError(status, 'bad_request', error.message);
}

/**
 * Requests per token id, or per client address without a valid token (guessing tokens is
 * limited too), counted in Redis so every instance shares the budget; over it a 429 in the
 * API's error shape, with Retry-After.
 */
async function registerRateLimit(
  app: FastifyInstance,
  limit: { max: number; windowMs: number },
  redis: RedisClient,
  keys: KeyBuilder,
  auth: Authenticator,
): Promise<void> {
  await app.register(rateLimitPlugin, {
    max: limit.max,
    timeWindow: limit.windowMs,
    redis,
    nameSpace: keys.rateLimitPrefix(),
    // Redis down fails the request anyway; the limiter is not what should say so.
    skipOnError: true,
    keyGenerator: async (request) => {
      try {
        const principal = await requestPrincipal(request, auth);
        if (principal.kind !== 'public') return `token:${principal.tokenId}`;
      } catch {
        // A bad token: counted by address.
      }
      return `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        context.statusCode,
        'rate_limited',
        `too many requests: at most ${context.max} per ${limit.windowMs / 1000} s; retry after ${context.after}`,
      ),
  });
}

function checkWatchOptions(o: ApiWatchOptions): Required<ApiWatchOptions> {
  const out: Required<ApiWatchOptions> = {
    deliver: o.deliver ?? true,
    retryWindowMs: o.retryWindowMs ?? 4 * 3600_000,
    retryBaseMs: o.retryBaseMs ?? 1000,
    retryMaxDelayMs: o.retryMaxDelayMs ?? 600_000,
    leaseMs: o.leaseMs ?? 10_000,
    deliveryTimeoutMs: o.deliveryTimeoutMs ?? 10_000,
    outboxMaxLen: o.outboxMaxLen ?? 10_000,
  };
  if (typeof out.deliver !== 'boolean') throw new TypeError('api: watches.deliver must be true or false');
  for (const name of [
    'retryWindowMs',
    'retryBaseMs',
    'retryMaxDelayMs',
    'leaseMs',
    'deliveryTimeoutMs',
    'outboxMaxLen',
  ] as const) {
    const value = out[name];
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new TypeError(`api: watches.${name} must be a positive integer, got ${String(value)}`);
  }
  if (out.leaseMs < 300) throw new TypeError(`api: watches.leaseMs must be at least 300, got ${out.leaseMs}`);
  return out;
}

export async function createApiService(options: ApiServiceOptions): Promise<ApiService> {
  if (typeof options.id !== 'string' || options.id === '') throw new TypeError('api: id is required');
  if (!Array.isArray(options.chains))
    throw new TypeError('api: chains must be an array of { chain, algorithm }');
  const { id } = options;
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  checkApiPort(port);
  const rateLimit =
    options.rateLimit === false
      ? null
      : { max: options.rateLimit?.max ?? 600, windowMs: options.rateLimit?.windowMs ?? 60_000 };
  if (rateLimit && (!Number.isSafeInteger(rateLimit.max) || rateLimit.max <= 0))
    throw new TypeError(`api: rateLimit.max must be a positive integer, got ${rateLimit.max}`);
  if (rateLimit && (!Number.isSafeInteger(rateLimit.windowMs) || rateLimit.windowMs <= 0))
    throw new TypeError(
      `api: rateLimit.windowMs must be a positive integer of ms, got ${rateLimit.windowMs}`,
    );
  const maxBodyBytes = options.maxBodyBytes ?? 65_536;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0)
    throw new TypeError(`api: maxBodyBytes must be a positive integer, got ${maxBodyBytes}`);
  const chains = new Map<string, ApiChain>();
  for (const [i, c] of options.chains.entries()) {
    if (typeof c?.chain !== 'string' || c.chain === '')
      throw new TypeError(`api: chains[${i}].chain is required`);
    if (c.algorithm !== 'sha256d' && c.algorithm !== 'scrypt')
      throw new TypeError(
        `api: chains[${i}].algorithm must be sha256d or scrypt, got ${String(c.algorithm)}`,
      );
    const p = c.payments;
    if (
      p !== undefined &&
      p !== null &&
      (!['pplns', 'prop', 'solo'].includes(p.scheme) || !Number.isSafeInteger(p.minimumPayoutSat))
    )
      throw new TypeError(
        `api: chains[${i}].payments must be { scheme: pplns | prop | solo, minimumPayoutSat: integer }`,
      );
    chains.set(c.chain, { chain: c.chain, algorithm: c.algorithm, payments: p ?? null });
  }
  const keys = options.keys ?? createKeyBuilder();
  const logger = options.logger ?? createLogger({ name: 'api', base: { id } });
  const version = options.version ?? packageVersion(import.meta.url);
  const ownMetrics = !(options.metrics && 'registry' in options.metrics);
  const metrics: Metrics =
    options.metrics && 'registry' in options.metrics
      ? options.metrics
      : createMetrics({
          service: 'api',
          id,
          version,
          ...(options.metrics?.statsd ? { statsd: options.metrics.statsd } : {}),
        });
  metrics.draining(false);
  const ownRedis = !isRedisClient(options.redis);
  const redis: RedisClient = isRedisClient(options.redis)
    ? options.redis
    : connectRedis(options.redis, `api-${id}`);

  let state: ApiStats['state'] = 'created';
  const responses = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  const requestRate = createRateMeter(
    () => responses['2xx'] + responses['3xx'] + responses['4xx'] + responses['5xx'],
  );

  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: maxBodyBytes,
    ...(options.trustProxy !== undefined && { trustProxy: options.trustProxy }),
    // Names up to 200 characters reach the validators, which say what is wrong with them.
    routerOptions: { maxParamLength: 512 },
    // HEAD is a heartbeat of its own on member paths, not GET without a body.
    exposeHeadRoutes: false,
    // A URL that does not decode (`%E0%A4%A`) is refused before routing: same error shape.
    frameworkErrors: (error, _request, reply) => {
      const apiError = fromFastify(error as FastifyError);
      const raw = reply as unknown as FastifyReply;
      void raw.status(apiError.status).send(apiError.toJSON());
    },
  });
  // Every body is opaque text (membership metadata, configs); the routes decide what it must be.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error, request, reply) => {
    const apiError = error instanceof ApiError ? error : fromFastify(error as FastifyError);
    if (apiError.status >= 500) logger.error({ err: error, url: request.url }, 'api: request failed');
    void reply.status(apiError.status).send(apiError.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0];
    void reply
      .status(404)
      .send(
        new ApiError(404, 'not_found', `no route ${request.method} ${url} (see /v1/openapi.json)`).toJSON(),
      );
  });
  app.addHook('onResponse', async (_request, reply) => {
    const klass = `${Math.floor(reply.statusCode / 100)}xx` as keyof typeof responses;
    if (klass in responses) responses[klass]++;
  });
  observeRequests(app, metrics);

  const watchOptions = checkWatchOptions(options.watches ?? {});
  const streams = [...chains.keys(), POOL_STREAM];
  const tail = createEventTail({
    redis,
    keys,
    chains: [...chains.keys()],
    onError: (error, stream) => logger.warn({ err: error, stream }, 'api: reading events failed'),
  });
  const watchStore = createWatchStore({ redis, keys, streams });
  const watchWorker = watchOptions.deliver
    ? createWatchWorker({
        redis,
        store: watchStore,
        deliverers: createDeliverers({ timeoutMs: watchOptions.deliveryTimeoutMs }),
        streams,
        holder: `${id}:${randomUUID().slice(0, 8)}`,
        wake: tail,
        leaseMs: watchOptions.leaseMs,
        retryWindowMs: watchOptions.retryWindowMs,
        retryBaseMs: watchOptions.retryBaseMs,
        retryMaxDelayMs: watchOptions.retryMaxDelayMs,
        outboxMaxLen: watchOptions.outboxMaxLen,
        logger,
      })
    : null;

  const streamOptions = options.stream ?? {};
  if (typeof streamOptions !== 'object' || streamOptions === null)
    throw new TypeError('api: stream must be an object of limits');
  const STREAM_LIMITS = [
    'maxBufferedBytes',
    'maxPendingEvents',
    'maxTopicsPerConnection',
    'checkpointMs',
    'pingMs',
    'maxMessageBytes',
  ] as const;
  for (const [name, value] of Object.entries(streamOptions)) {
    if (!STREAM_LIMITS.includes(name as (typeof STREAM_LIMITS)[number]))
      throw new TypeError(`api: stream.${name} is not an option (options: ${STREAM_LIMITS.join(', ')})`);
    if (!Number.isSafeInteger(value) || (value as number) <= 0)
      throw new TypeError(`api: stream.${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  const { maxMessageBytes, ...hubLimits } = streamOptions;
  const auth: TokenAuthenticator = createTokenAuthenticator({
    redis,
    keys,
    ...(options.adminToken !== undefined && { adminToken: options.adminToken }),
    ...(options.tokenCacheMs !== undefined && { cacheMs: options.tokenCacheMs }),
  });
  // From here the authenticator holds a subscribed connection: closed if the service is not made.
  try {
    if (rateLimit) await registerRateLimit(app, rateLimit, redis, keys, auth);
  } catch (error) {
    await auth.close();
    throw error;
  }
  const hub = await registerStreamRoute(app, {
    redis,
    keys,
    chains,
    tail,
    auth,
    ...(maxMessageBytes !== undefined && { maxMessageBytes }),
    hub: { ...hubLimits, onError: (error) => logger.error({ err: error }, 'api: stream failed') },
  });
  const routes: ApiRoute[] = [
    ...readRoutes({ redis, keys, chains }),
    ...groupRoutes({
      redis,
      keys,
      openGroups: options.openGroups === true,
      loopbackOnly: LOOPBACK.has(host),
    }),
    ...adminRoutes({
      redis,
      keys,
      auth,
      ...(options.adminToken !== undefined && { adminToken: options.adminToken }),
    }),
    ...watchRoutes({ redis, keys, store: watchStore, onCreated: () => watchWorker?.poke() }),
    ...operatorRoutes({
      redis,
      keys,
      haproxyStatsSocket: options.haproxyStatsSocket,
      stratumFronts: options.stratumFronts ?? [],
    }),
  ];
  routes.push(
    route({
      method: 'GET',
      url: '/v1/openapi.json',
      summary: 'This document',
      tag: 'meta',
      params: z.object({}),
      query: noQuery,
      // Serialized once: it only changes with the code.
      handler: async ({ reply }) => {
        void reply.type('application/json');
        return documentText;
      },
    }),
  );
  const documentText = JSON.stringify(openApiDocument(routes, { version }));
  registerRoutes(app, routes, auth);
  if (options.dashboardDir !== false)
    registerDashboardRoutes(app, options.dashboardDir ?? defaultDashboardDir());

  let url: string | null = null;
  let http: StatusServer | null = null;
  let registration: ServiceRegistration | null = null;

  const stats = (): ApiStats => ({
    id,
    version,
    url,
    state,
    responses: { ...responses },
    watches: watchWorker?.stats() ?? null,
    stream: hub.stats(),
  });

  let draining: Promise<void> | null = null;
  let closing: Promise<void> | null = null;
  const service: ApiService = {
    id,
    get url() {
      return url;
    },
    logger,
    authenticator: auth,
    async start() {
      if (state !== 'created') throw new Error(`api ${id} cannot start: it is ${state}`);
      await requireRedisVersion(redis, `api ${id}`);
      // Revocations must reach this instance before it serves a cached token.
      await auth.ready;
      tail.start();
      const boundPort = await listenFirstFree(app, host, port);
      const shownHost = isWildcardHost(host) ? (options.advertiseHost ?? '127.0.0.1') : host;
      url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${boundPort}`;
      http = await startStatusServer({
        portRange: options.httpPortRange ?? [29000, 29999],
        host: options.httpHost ?? '127.0.0.1',
        advertiseHost: shownHost,
        metrics,
        stats,
        ...(options.onDrain ? { onDrain: options.onDrain } : {}),
        ...(options.adminToken ? { adminToken: options.adminToken } : {}),
        health: async () => {
          if (state !== 'up') return { ok: false, reasons: [`api is ${state}`] };
          try {
            await redis.ping();
            return { ok: true };
          } catch (error) {
            return { ok: false, reasons: [`redis unreachable: ${(error as Error).message}`] };
          }
        },
      });
      state = 'up';
      await watchWorker?.start();
      registration = await registerService({
        redis,
        keys,
        kind: 'api',
        id,
        http: http.url,
        api: url,
        version,
        measureLoad: () => ({ requestsPerS: requestRate() }),
        ...(options.serviceTtlMs ? { ttlMs: options.serviceTtlMs } : {}),
        onError: (error) => {
          metrics.redisError();
          logger.warn({ err: error }, 'api: registry refresh failed');
        },
      });
      // The api's own `service.api.up` (and whatever came before it) reaches the tail before
      // start() resolves: a client subscribing after that gets it in its snapshot, not after it
      // as news.
      await tail.caughtUp();
      logger.info({ url, chains: [...chains.keys()] }, 'api: up');
    },
    drain() {
      draining ??= (async () => {
        if (state !== 'up') return;
        state = 'draining';
        metrics.draining(true);
        await registration?.update({ state: 'draining' }).catch(() => {});
        await registration?.close().catch(() => {});
        registration = null;
        // Other instances take this one's watches at once (leases given up, not left to lapse).
        await watchWorker?.close();
        logger.info('api: drained');
      })();
      return draining;
    },
    close() {
      closing ??= (async () => {
        await service.drain();
        state = 'closed';
        await hub.close();
        await app.close();
        await watchWorker?.close();
        await tail.close();
        await auth.close();
        await http?.close();
        if (ownMetrics) await metrics.close();
        if (ownRedis) redis.disconnect();
      })();
      return closing;
    },
    stats,
  };
  return service;
}
