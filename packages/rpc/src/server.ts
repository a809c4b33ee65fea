import { EventEmitter } from 'node:events';
import { PortRange, RpcErrorCode, RpcKind, type RpcMethods, type RpcPushes } from '@hashwire/protocol';
import { Context, Router } from 'zeromq';
import { bindFirstFree, checkPortRange, tcpEndpoint } from './bind.js';
import { ZapHandler, checkCurveKey, requireCurveOffLoopback } from './curve.js';
import {
  DROPPED_FRAME,
  type DecodeResult,
  HEARTBEAT_FRAME,
  HEARTBEAT_METHOD,
  MALFORMED_REASONS,
  type MalformedReason,
  RESERVED_PREFIX,
  decodeEnvelope,
  encodeEnvelope,
} from './envelope.js';
import { RpcError } from './errors.js';
import { type MethodMap, type MethodName, type RpcLogger, checkPositive, silentLogger } from './types.js';

/** What a handler learns about the call besides its body. */
export interface RpcCallContext {
  /** The calling DEALER's routing id, hex; stable for one connection of one client. */
  readonly peer: string;
  readonly method: string;
  /** Makes the caller a subscriber of `topic`: `server.push(topic, ...)` reaches it from now on. */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
}

export type RpcHandler<Req, Rep> = (body: Req, ctx: RpcCallContext) => Rep | Promise<Rep>;

/** Handlers for some of the methods of `M`; a method without one answers `UnknownMethod`. */
export type RpcHandlers<M extends MethodMap<M>> = {
  [K in MethodName<M>]?: RpcHandler<M[K]['req'], M[K]['rep']>;
};

export interface RpcServerCurve {
  serverSecretKey: string;
  serverPublicKey: string;
  /**
   * Public keys (Z85) of the clients let in. Without it, any client that knows the server's public
   * key may connect (traffic is still encrypted).
   */
  allowedClientKeys?: readonly string[];
}

export interface RpcServerOptions<M extends MethodMap<M>> {
  handlers: RpcHandlers<M>;
  /**
   * Ports tried in order; the server binds the first free one.
   * @defaultValue `PortRange.rpc` (28000–28999)
   */
  portRange?: readonly [number, number];
  /**
   * Address to bind. Anything but loopback (`127.0.0.1`, `::1`, `localhost`) needs `curve` with
   * `allowedClientKeys`: the server refuses to start otherwise.
   * @defaultValue `'127.0.0.1'`
   */
  host?: string;
  /**
   * Host written into `endpoint`, for when `host` is a wildcard such as `0.0.0.0`.
   * @defaultValue `host`
   */
  advertiseHost?: string;
  /**
   * Clients must send a heartbeat this often (use the same value on both sides); a subscriber
   * silent for 3 intervals is dropped.
   * @defaultValue 1000
   */
  heartbeatIntervalMs?: number;
  /**
   * Largest message answered normally; a bigger request gets `TooLarge`. ZeroMQ itself cuts off a
   * connection that sends a message over 4× this, so a peer cannot make the server buffer more.
   * @defaultValue 4 MiB
   */
  maxMessageBytes?: number;
  curve?: RpcServerCurve;
  logger?: RpcLogger;
}

export interface RpcServerStats {
  /** Well-formed requests received, including those for unknown methods. */
  requests: number;
  replies: number;
  /** Error replies sent, by `RpcErrorCode`. */
  errors: Record<number, number>;
  /** Malformed messages by reason, answered or not. */
  malformed: Record<MalformedReason, number>;
  /** Malformed messages dropped because no request id could be recovered to answer. */
  droppedMalformed: number;
  heartbeats: number;
  /** Peers currently subscribed to at least one topic. */
  subscribers: number;
  topics: number;
  /** `push()` calls, and messages they sent (one per subscriber). */
  pushes: number;
  pushMessages: number;
  /** Subscribers dropped for silence. */
  peersDropped: number;
  /** Handshakes refused by `allowedClientKeys`. */
  authDenied: number;
}

export interface RpcPeerDropped {
  peer: string;
  topics: string[];
  silentMs: number;
}

export interface RpcServerEvents {
  peerDropped: [dropped: RpcPeerDropped];
}

interface Subscriber {
  key: string;
  identity: Buffer;
  topics: Set<string>;
  lastSeen: number;
}

const MAX_METHOD_IN_MESSAGE = 64;

class CallContext implements RpcCallContext {
  constructor(
    private readonly server: RpcServerImpl,
    private readonly identity: Buffer,
    readonly method: string,
  ) {}

  get peer(): string {
    return this.identity.toString('hex');
  }

  subscribe(topic: string): void {
    this.server.addSubscriber(this.identity, topic);
  }

  unsubscribe(topic: string): void {
    this.server.removeSubscriber(this.identity.toString('hex'), topic);
  }
}

/** A ROUTER bound to the first free port of a range, serving typed handlers and pushing to subscribers. */
export interface RpcServer<M extends MethodMap<M> = RpcMethods, P extends object = RpcPushes>
  extends EventEmitter<RpcServerEvents> {
  /** `tcp://advertiseHost:port`, what clients connect to and the registry publishes. */
  readonly endpoint: string;
  readonly port: number;
  /**
   * Sends `[1, 'push', 0, method, body]` to every subscriber of `topic`; the body is encoded once.
   * Returns the number of subscribers it was sent to.
   */
  push<K extends MethodName<P>>(topic: string, method: K, body: P[K]): number;
  /** Subscribers of `topic`, or peers subscribed to anything. */
  subscriberCount(topic?: string): number;
  stats(): RpcServerStats;
  /**
   * Resolves once no handler is running (an async handler counts until it settles and its reply
   * is sent), or after `timeoutMs`, with how many were still running. Requests keep being served
   * meanwhile. For a graceful stop: wait here before leaving the registry and closing, so callers
   * get the answers to what they already asked.
   */
  idle(timeoutMs: number): Promise<number>;
  close(): Promise<void>;
}

class RpcServerImpl extends EventEmitter<RpcServerEvents> {
  private closed = false;
  /** Async handlers not yet settled, and who waits for them all to settle. */
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly peers = new Map<string, Subscriber>();
  private readonly topicSubscribers = new Map<string, Map<string, Subscriber>>();
  private readonly loop: Promise<void>;
  private readonly sweepTimer: NodeJS.Timeout;
  private lastSweep = performance.now();
  private readonly counters = {
    requests: 0,
    replies: 0,
    droppedMalformed: 0,
    heartbeats: 0,
    pushes: 0,
    pushMessages: 0,
    peersDropped: 0,
  };
  private readonly errors: Record<number, number> = {};
  private readonly malformed = Object.fromEntries(MALFORMED_REASONS.map((r) => [r, 0])) as Record<
    MalformedReason,
    number
  >;

  constructor(
    private readonly router: Router,
    private readonly handlers: ReadonlyMap<string, RpcHandler<unknown, unknown>>,
    readonly endpoint: string,
    readonly port: number,
    private readonly heartbeatIntervalMs: number,
    private readonly maxMessageBytes: number,
    private readonly logger: RpcLogger,
    private readonly zap: ZapHandler | null,
  ) {
    super();
    this.loop = this.serve();
    this.sweepTimer = setInterval(() => this.sweep(), heartbeatIntervalMs);
    this.sweepTimer.unref();
  }

  private async serve(): Promise<void> {
    try {
      for await (const frames of this.router) this.onMessage(frames);
    } catch (err) {
      if (!this.closed) this.logger.error({ err }, 'rpc: server receive loop failed');
    }
  }

  private onMessage(frames: Buffer[]): void {
    const identity = frames[0] as Buffer;
    if (this.peers.size > 0) {
      const peer = this.peers.get(identity.toString('hex'));
      if (peer) peer.lastSeen = performance.now();
    }
    if (frames.length !== 2) {
      this.onMalformed(identity, {
        ok: false,
        reason: 'frames',
        id: 0,
        kind: null,
        detail: `${frames.length - 1} frames`,
      });
      return;
    }
    const result = decodeEnvelope(frames[1] as Buffer, this.maxMessageBytes);
    if (!result.ok) {
      this.onMalformed(identity, result);
      return;
    }
    const { kind, id, method, body } = result.envelope;
    if (kind === RpcKind.Request && id > 0) {
      this.onRequest(identity, id, method, body);
    } else if (kind === RpcKind.Push && method === HEARTBEAT_METHOD) {
      this.counters.heartbeats++;
      this.send(identity, HEARTBEAT_FRAME);
    } else {
      this.onMalformed(identity, { ok: false, reason: 'kind', id: 0, kind, detail: `${kind} ${method}` });
    }
  }

  private onMalformed(identity: Buffer, result: Extract<DecodeResult, { ok: false }>): void {
    this.malformed[result.reason]++;
    // Never answer a reply, error or push: two confused peers must not bounce errors forever.
    const answerable =
      result.id > 0 &&
      result.kind !== RpcKind.Reply &&
      result.kind !== RpcKind.Error &&
      result.kind !== RpcKind.Push;
    this.logger.debug(
      { peer: identity.toString('hex'), reason: result.reason, detail: result.detail, answered: answerable },
      'rpc: malformed message',
    );
    if (!answerable) {
      this.counters.droppedMalformed++;
      return;
    }
    const code = result.reason === 'tooLarge' ? RpcErrorCode.TooLarge : RpcErrorCode.BadEnvelope;
    this.sendError(identity, result.id, '', code, malformedMessage(result));
  }

  private onRequest(identity: Buffer, id: number, method: string, body: unknown): void {
    this.counters.requests++;
    const handler = this.handlers.get(method);
    if (!handler) {
      this.sendError(
        identity,
        id,
        method,
        RpcErrorCode.UnknownMethod,
        `unknown method '${method.slice(0, MAX_METHOD_IN_MESSAGE)}'`,
      );
      return;
    }
    let result: unknown;
    try {
      result = handler(body, new CallContext(this, identity, method));
    } catch (err) {
      this.onHandlerError(identity, id, method, err);
      return;
    }
    if (isPromiseLike(result)) {
      this.running++;
      result
        .then(
          (value) => this.reply(identity, id, method, value),
          (err) => this.onHandlerError(identity, id, method, err),
        )
        .then(() => this.settled());
    } else {
      this.reply(identity, id, method, result);
    }
  }

  private reply(identity: Buffer, id: number, method: string, value: unknown): void {
    if (this.closed) return;
    let frame: Buffer;
    try {
      frame = encodeEnvelope(RpcKind.Reply, id, method, value);
    } catch (err) {
      this.onHandlerError(identity, id, method, err);
      return;
    }
    this.counters.replies++;
    this.send(identity, frame);
  }

  private onHandlerError(identity: Buffer, id: number, method: string, err: unknown): void {
    if (err instanceof RpcError) {
      this.sendError(identity, id, method, err.code, err.message);
      return;
    }
    // The peer learns only that it failed; the operator gets the stack.
    this.logger.error({ err, method, peer: identity.toString('hex') }, 'rpc: handler failed');
    this.sendError(identity, id, method, RpcErrorCode.Internal, 'internal error');
  }

  private sendError(identity: Buffer, id: number, method: string, code: number, message: string): void {
    if (this.closed) return;
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    this.send(identity, encodeEnvelope(RpcKind.Error, id, method, { code, message }));
  }

  private send(identity: Buffer, frame: Buffer): void {
    // sendTimeout 0 and a non-mandatory ROUTER: this never waits; a gone or full peer drops it.
    this.router.send([identity, frame]).catch((err: unknown) => {
      if (!this.closed) this.logger.debug({ err }, 'rpc: send failed');
    });
  }

  addSubscriber(identity: Buffer, topic: string): void {
    if (this.closed) return;
    const key = identity.toString('hex');
    let peer = this.peers.get(key);
    if (!peer) {
      peer = { key, identity: Buffer.from(identity), topics: new Set(), lastSeen: performance.now() };
      this.peers.set(key, peer);
    }
    peer.topics.add(topic);
    let subscribers = this.topicSubscribers.get(topic);
    if (!subscribers) {
      subscribers = new Map();
      this.topicSubscribers.set(topic, subscribers);
    }
    subscribers.set(key, peer);
  }

  removeSubscriber(key: string, topic: string): void {
    const peer = this.peers.get(key);
    if (!peer) return;
    peer.topics.delete(topic);
    const subscribers = this.topicSubscribers.get(topic);
    subscribers?.delete(key);
    if (subscribers?.size === 0) this.topicSubscribers.delete(topic);
    if (peer.topics.size === 0) this.peers.delete(key);
  }

  push(topic: string, method: string, body: unknown): number {
    this.counters.pushes++;
    const subscribers = this.topicSubscribers.get(topic);
    if (!subscribers || subscribers.size === 0 || this.closed) return 0;
    const frame = encodeEnvelope(RpcKind.Push, 0, method, body);
    for (const peer of subscribers.values()) this.send(peer.identity, frame);
    this.counters.pushMessages += subscribers.size;
    return subscribers.size;
  }

  subscriberCount(topic?: string): number {
    return topic === undefined ? this.peers.size : (this.topicSubscribers.get(topic)?.size ?? 0);
  }

  private sweep(): void {
    const now = performance.now();
    const late = now - this.lastSweep > 2 * this.heartbeatIntervalMs;
    this.lastSweep = now;
    // If this timer itself ran late the event loop was stalled and heartbeats may be waiting
    // unread in the socket: judge nobody until they have been read.
    if (late) return;
    const limit = 3 * this.heartbeatIntervalMs;
    for (const peer of this.peers.values()) {
      const silentMs = now - peer.lastSeen;
      if (silentMs <= limit) continue;
      const topics = [...peer.topics];
      for (const topic of topics) this.removeSubscriber(peer.key, topic);
      this.counters.peersDropped++;
      // If the peer is alive after all (it was stalled), this tells it to subscribe again.
      this.send(peer.identity, DROPPED_FRAME);
      this.logger.warn({ peer: peer.key, topics, silentMs: Math.round(silentMs) }, 'rpc: subscriber dropped');
      this.emit('peerDropped', { peer: peer.key, topics, silentMs });
    }
  }

  stats(): RpcServerStats {
    return {
      ...this.counters,
      errors: { ...this.errors },
      malformed: { ...this.malformed },
      subscribers: this.peers.size,
      topics: this.topicSubscribers.size,
      authDenied: this.zap?.denied ?? 0,
    };
  }

  private settled(): void {
    if (--this.running > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  async idle(timeoutMs: number): Promise<number> {
    if (this.running === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    return this.running;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.router.close();
    await this.loop;
    await this.zap?.close();
    this.peers.clear();
    this.topicSubscribers.clear();
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function malformedMessage(result: Extract<DecodeResult, { ok: false }>): string {
  switch (result.reason) {
    case 'tooLarge':
      return `message too large (${result.detail})`;
    case 'decode':
      return 'message is not valid msgpack';
    case 'version':
      return `unsupported envelope ${result.detail}; this server speaks version 1`;
    case 'kind':
      return `unknown envelope ${result.detail}; expected req`;
    default:
      return 'envelope must be [1, kind, id, method, body]';
  }
}

const DEFAULT_HEARTBEAT_MS = 1000;
const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Binds a ROUTER on the first free port of `portRange` and serves `handlers` on it.
 *
 * @example
 * const server = await createRpcServer({ handlers: { 'svc.status': () => ({ ok: true }) } });
 * registry.register({ rpc: server.endpoint });
 */
export async function createRpcServer<M extends MethodMap<M> = RpcMethods, P extends object = RpcPushes>(
  options: RpcServerOptions<M>,
): Promise<RpcServer<M, P>> {
  const range = checkPortRange(options.portRange ?? PortRange.rpc);
  const host = options.host ?? '127.0.0.1';
  const heartbeatIntervalMs = checkPositive(
    'heartbeatIntervalMs',
    options.heartbeatIntervalMs,
    DEFAULT_HEARTBEAT_MS,
  );
  const maxMessageBytes = checkPositive(
    'maxMessageBytes',
    options.maxMessageBytes,
    DEFAULT_MAX_MESSAGE_BYTES,
  );
  const logger = options.logger ?? silentLogger;
  const handlers = new Map<string, RpcHandler<unknown, unknown>>();
  for (const [method, handler] of Object.entries(options.handlers ?? {})) {
    if (method.startsWith(RESERVED_PREFIX)) {
      throw new RangeError(
        `handlers: method '${method}' is reserved (names starting with '$' belong to the transport)`,
      );
    }
    if (typeof handler !== 'function') throw new TypeError(`handlers.${method} must be a function`);
    handlers.set(method, handler as RpcHandler<unknown, unknown>);
  }

  const curve = options.curve;
  requireCurveOffLoopback('host', host, 'curve', curve);
  let context: Context | undefined;
  let zap: ZapHandler | null = null;
  if (curve) {
    checkCurveKey('curve.serverSecretKey', curve.serverSecretKey);
    checkCurveKey('curve.serverPublicKey', curve.serverPublicKey);
    if (curve.allowedClientKeys) {
      const keys = new Set(
        curve.allowedClientKeys.map((k, i) => checkCurveKey(`curve.allowedClientKeys[${i}]`, k)),
      );
      // ZAP is per context: a context of our own keeps this policy away from other sockets.
      context = new Context();
      zap = await ZapHandler.start(context, keys, logger);
    }
  }
  const router = new Router({
    ...(context ? { context } : {}),
    linger: 0,
    sendTimeout: 0,
    maxMessageSize: maxMessageBytes * 4,
    ...(curve
      ? { curveServer: true, curveSecretKey: curve.serverSecretKey, curvePublicKey: curve.serverPublicKey }
      : {}),
  });
  let port: number;
  try {
    port = await bindFirstFree(router, host, range);
  } catch (err) {
    router.close();
    await zap?.close();
    throw err;
  }
  const endpoint = tcpEndpoint(options.advertiseHost ?? host, port);
  const server = new RpcServerImpl(
    router,
    handlers,
    endpoint,
    port,
    heartbeatIntervalMs,
    maxMessageBytes,
    logger,
    zap,
  );
  return server as unknown as RpcServer<M, P>;
}
