import websocket from '@fastify/websocket';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator, Principal } from './auth.js';
import { ApiError } from './errors.js';
import type { EventTail } from './event-tail.js';
import { type ApiChain, readAccount, readBlockPage, readPool, readServices } from './read.js';
import { type StreamHub, type StreamHubOptions, createStreamHub } from './stream-hub.js';
import type { ParsedTopic } from './stream-topics.js';

export interface StreamRouteOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  chains: ReadonlyMap<string, ApiChain>;
  tail: EventTail;
  auth: Authenticator;
  /** Largest message a client may send, bytes. @defaultValue 65536 */
  maxMessageBytes?: number;
  hub?: Pick<
    StreamHubOptions,
    'maxBufferedBytes' | 'maxPendingEvents' | 'maxTopicsPerConnection' | 'checkpointMs' | 'pingMs' | 'onError'
  >;
}

/** Blocks a state topic's snapshot lists. */
const SNAPSHOT_BLOCKS = 50;

/** The current state of a state topic: what the matching REST read answers. */
function snapshotReader(options: StreamRouteOptions) {
  const { redis, keys, chains } = options;
  return async (topic: ParsedTopic): Promise<unknown> => {
    const state = topic.state;
    if (!state) return null;
    switch (state.kind) {
      case 'pool':
        return { chains: await Promise.all([...chains.values()].map((c) => readPool(redis, keys, c))) };
      case 'services':
        return { services: await readServices(redis, keys) };
      case 'chain':
        return readPool(redis, keys, chains.get(state.chain)!);
      case 'blocks':
        return readBlockPage(redis, keys, state.chain, { limit: SNAPSHOT_BLOCKS });
      case 'account':
        return readAccount(redis, keys, chains.get(state.chain)!, state.account);
    }
  };
}

/** `?token=` (browsers cannot set headers on a WebSocket), else the Authorization header, else public. */
async function principalOf(auth: Authenticator, request: FastifyRequest): Promise<Principal> {
  const query = request.query as Record<string, unknown>;
  const token = query.token;
  if (token !== undefined) {
    if (typeof token !== 'string' || token === '')
      throw new ApiError(401, 'unauthorized', 'token: expected one non-empty token', 'token', 'query');
    return auth.authenticateToken(token).catch(() => {
      throw new ApiError(401, 'unauthorized', 'token: unknown or revoked token', 'token', 'query');
    });
  }
  return auth.authenticate(request);
}

/**
 * `GET /v1/stream`: the live stream over WebSocket. A bad `?token=` or Authorization header is a
 * 401 before the upgrade; a token may also come in the first message (`{"op":"auth"}`).
 */
export async function registerStreamRoute(
  app: FastifyInstance,
  options: StreamRouteOptions,
): Promise<StreamHub> {
  const hub = createStreamHub({
    tail: options.tail,
    auth: options.auth,
    topics: { chains: new Set(options.chains.keys()), watchOutbox: (id) => options.keys.watchOutbox(id) },
    snapshot: snapshotReader(options),
    ...options.hub,
  });
  await app.register(websocket, { options: { maxPayload: options.maxMessageBytes ?? 65_536 } });
  const principals = new WeakMap<FastifyRequest, Principal>();
  app.get(
    '/v1/stream',
    {
      websocket: true,
      preValidation: async (request) => {
        const query = request.query as Record<string, unknown>;
        for (const key of Object.keys(query))
          if (key !== 'token')
            throw new ApiError(400, 'bad_request', `query ${key}: unknown query parameter`, key, 'query');
        principals.set(request, await principalOf(options.auth, request));
      },
    },
    (socket, request) => {
      hub.accept(socket, principals.get(request) ?? { kind: 'public' });
    },
  );
  return hub;
}
