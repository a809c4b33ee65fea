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
import { type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
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
import { ApiError } from './errors.js';
import type { ApiChain } from './read.js';
import { type ApiRoute, noQuery, openApiDocument, registerRoutes, route } from './route.js';
import { groupRoutes } from './routes-groups.js';
import { readRoutes } from './routes-read.js';

export interface ApiServiceOptions {
  /** Instance id, unique among api instances; its registry entry is `svc:{api}:<id>`. */
  id: string;
  /** A client (left open on close) or how to connect (closed on close). */
  redis: RedisClient | RedisConfig;
  /** @defaultValue createKeyBuilder() (prefix `hw:`) */
  keys?: KeyBuilder;
  /** The pool's chains and their algorithms (for hashrates). */
  chains: readonly ApiChain[];
  /** Address of the API. @defaultValue '127.0.0.1' */
  host?: string;
  /** Port of the API; 0 takes any free port. @defaultValue 8080 */
  port?: number;
  /** Host written into the registered URL when `host` is a wildcard. @defaultValue '127.0.0.1' */
  advertiseHost?: string;
  /**
   * Serve membership groups on an address other than loopback. Groups take writes and have no
   * tokens yet, so off loopback the service refuses to start without this. @defaultValue false
   */
  openGroups?: boolean;
  /** Largest request body (membership metadata and configs), bytes. @defaultValue 65536 */
  maxBodyBytes?: number;
  /** `/healthz`, `/stats`, `/metrics` (and `POST /drain`): the first free port of this range. @defaultValue [29000, 29999] */
  httpPortRange?: readonly [number, number];
  /** @defaultValue '127.0.0.1' */
  httpHost?: string;
  onDrain?: () => void;
  /** The token `POST /drain` must carry; without it `/drain` is refused. */
  adminToken?: string;
  /** @defaultValue 60000 */
  serviceTtlMs?: number;
  version?: string;
  logger?: Logger;
  metrics?: Metrics | { statsd?: StatsdOptions };
}

export interface ApiStats {
  id: string;
  version: string;
  url: string | null;
  state: 'created' | 'up' | 'draining' | 'closed';
  /** Answers by status class. */
  responses: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
}

export interface ApiService {
  readonly id: string;
  /** `http://host:port` of the API once started. */
  readonly url: string | null;
  readonly logger: Logger;
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

export async function createApiService(options: ApiServiceOptions): Promise<ApiService> {
  if (typeof options.id !== 'string' || options.id === '') throw new TypeError('api: id is required');
  if (!Array.isArray(options.chains))
    throw new TypeError('api: chains must be an array of { chain, algorithm }');
  const { id } = options;
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError(`api: port must be an integer 0–65535, got ${port}`);
  if (!LOOPBACK.has(host) && options.openGroups !== true) {
    throw new TypeError(
      `api: host ${host} is not loopback and membership groups take writes without tokens (not built yet): set openGroups: true to serve them there anyway`,
    );
  }
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
    chains.set(c.chain, { chain: c.chain, algorithm: c.algorithm });
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

  const routes: ApiRoute[] = [...readRoutes({ redis, keys, chains }), ...groupRoutes({ redis, keys })];
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
  registerRoutes(app, routes);

  let url: string | null = null;
  let http: StatusServer | null = null;
  let registration: ServiceRegistration | null = null;

  const stats = (): ApiStats => ({ id, version, url, state, responses: { ...responses } });

  let draining: Promise<void> | null = null;
  let closing: Promise<void> | null = null;
  const service: ApiService = {
    id,
    get url() {
      return url;
    },
    logger,
    async start() {
      if (state !== 'created') throw new Error(`api ${id} cannot start: it is ${state}`);
      await requireRedisVersion(redis, `api ${id}`);
      await app.listen({ host, port });
      const address = app.server.address();
      const boundPort = typeof address === 'object' && address ? address.port : port;
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
      logger.info({ url, chains: [...chains.keys()] }, 'api: up');
    },
    drain() {
      draining ??= (async () => {
        if (state !== 'up') return;
        state = 'draining';
        metrics.draining(true);
        await registration?.close().catch(() => {});
        registration = null;
        logger.info('api: drained');
      })();
      return draining;
    },
    close() {
      closing ??= (async () => {
        await service.drain();
        state = 'closed';
        await app.close();
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
