import { EventEmitter } from 'node:events';
import { RpcErrorCode, RpcKind, type RpcMethods, type RpcPushes } from '@hashwire/protocol';
import { Dealer } from 'zeromq';
import { checkCurveKey } from './curve.js';
import {
  DROPPED_METHOD,
  HEARTBEAT_FRAME,
  HEARTBEAT_METHOD,
  MAX_REQUEST_ID,
  decodeEnvelope,
  encodeEnvelope,
} from './envelope.js';
import { RpcError } from './errors.js';
import { type MethodMap, type MethodName, type RpcLogger, checkPositive, silentLogger } from './types.js';

/** Finds the server's current endpoint; called at start and after every lost connection. */
export type RpcEndpointResolver = () => Promise<string>;

export interface RpcClientCurve {
  /** The server's public key (Z85). */
  serverPublicKey: string;
  /** This client's key pair (Z85), from `curveKeyPair()`. */
  publicKey: string;
  secretKey: string;
}

export interface RpcClientOptions {
  /**
   * Deadline of a request unless the call sets its own.
   * @defaultValue 5000
   */
  timeoutMs?: number;
  /**
   * Heartbeat period (use the server's value); 3 intervals without a word from the server and the
   * client reconnects through its resolver.
   * @defaultValue 1000
   */
  heartbeatIntervalMs?: number;
  curve?: RpcClientCurve;
  logger?: RpcLogger;
}

export interface RpcRequestOptions {
  timeoutMs?: number;
}

export interface RpcClientStats {
  requests: number;
  replies: number;
  /** Error replies received, by `RpcErrorCode`. */
  errors: Record<number, number>;
  timeouts: number;
  /** Replies that arrived after their request's deadline (or after it failed), dropped. */
  lateReplies: number;
  /** Requests failed because the connection was lost or the client closed. */
  unavailable: number;
  pushes: number;
  heartbeats: number;
  reconnects: number;
  resubscribes: number;
  /** Messages from the server that could not be understood. */
  malformed: number;
}

export interface RpcClientEvents {
  push: [method: string, body: unknown];
  /** The server was silent for 3 heartbeat intervals; the client is finding it again. */
  dropped: [info: { endpoint: string; silentMs: number }];
  reconnected: [info: { endpoint: string }];
  /** Subscriptions were replayed, after a reconnect or because the server had dropped them. */
  resubscribed: [info: { endpoint: string; count: number; failed: number; reason: 'reconnect' | 'server' }];
  /** The resolver threw or returned something unusable; the client tries again an interval later. */
  resolveFailed: [err: unknown];
}

/** A DEALER talking to one server, found again through the resolver whenever it goes quiet. */
export interface RpcClient<M extends MethodMap<M> = RpcMethods, P extends object = RpcPushes>
  extends EventEmitter<RpcClientEvents> {
  /** The endpoint currently connected to, or null while resolving. */
  readonly endpoint: string | null;
  /** Calls `method`; rejects with `RpcError` (remote code, `Timeout`, or `Unavailable`). */
  request<K extends MethodName<M>>(
    method: K,
    body: M[K]['req'],
    options?: RpcRequestOptions,
  ): Promise<M[K]['rep']>;
  /**
   * Calls `method` now and again after every reconnect (and whenever the server says it dropped
   * this client), so a push subscription outlives server restarts. `onReply` sees every reply;
   * the promise is the first one.
   */
  subscribe<K extends MethodName<M>>(
    method: K,
    body: M[K]['req'],
    onReply?: (reply: M[K]['rep']) => void,
  ): Promise<M[K]['rep']>;
  /** Calls `fn` with the body of every push of `method`; returns a function that stops it. */
  onPush<K extends MethodName<P>>(method: K, fn: (body: P[K]) => void): () => void;
  stats(): RpcClientStats;
  close(): Promise<void>;
}

interface Pending {
  method: string;
  timeoutMs: number;
  timer: NodeJS.Timeout;
  sent: boolean;
  resolve(value: unknown): void;
  reject(err: RpcError): void;
}

interface Subscription {
  method: string;
  body: unknown;
  onReply: ((reply: unknown) => void) | undefined;
}

class RpcClientImpl extends EventEmitter<RpcClientEvents> {
  private socket: Dealer | null = null;
  private current: string | null = null;
  private generation = 0;
  private loop: Promise<void> = Promise.resolve();
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private queued: { id: number; frame: Buffer }[] = [];
  private readonly subscriptions: Subscription[] = [];
  private readonly pushHandlers = new Map<string, Set<(body: unknown) => void>>();
  private lastHeard = performance.now();
  private lastTick = performance.now();
  private reconnecting = true;
  private closed = false;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private pause: { timer: NodeJS.Timeout; wake(): void } | null = null;
  private readonly counters = {
    requests: 0,
    replies: 0,
    timeouts: 0,
    lateReplies: 0,
    unavailable: 0,
    pushes: 0,
    heartbeats: 0,
    reconnects: 0,
    resubscribes: 0,
    malformed: 0,
  };
  private readonly errors: Record<number, number> = {};

  constructor(
    private readonly resolve: RpcEndpointResolver,
    private readonly timeoutMs: number,
    private readonly heartbeatIntervalMs: number,
    private readonly curve: RpcClientCurve | undefined,
    private readonly logger: RpcLogger,
  ) {
    super();
    this.heartbeatTimer = setInterval(() => this.tick(), heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    void this.connect().then(() => {
      this.reconnecting = false;
    });
  }

  get endpoint(): string | null {
    return this.current;
  }

  request(method: string, body: unknown, options?: RpcRequestOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(new RpcError(RpcErrorCode.Unavailable, 'rpc client is closed'));
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const id = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1;
    this.nextId = id;
    let frame: Buffer;
    try {
      frame = encodeEnvelope(RpcKind.Request, id, method, body);
    } catch (err) {
      const reason = (err as Error).message;
      return Promise.reject(
        new RpcError(RpcErrorCode.BadRequest, `${method}: body cannot be encoded (${reason})`),
      );
    }
    this.counters.requests++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.onTimeout(id), timeoutMs);
      this.pending.set(id, { method, timeoutMs, timer, sent: false, resolve, reject });
      if (this.socket) this.write(id, frame);
      else this.queued.push({ id, frame });
    });
  }

  subscribe(method: string, body: unknown, onReply?: (reply: unknown) => void): Promise<unknown> {
    const subscription = { method, body, onReply };
    this.subscriptions.push(subscription);
    return this.callSubscription(subscription);
  }

  onPush(method: string, fn: (body: unknown) => void): () => void {
    let handlers = this.pushHandlers.get(method);
    if (!handlers) {
      handlers = new Set();
      this.pushHandlers.set(method, handlers);
    }
    handlers.add(fn);
    return () => {
      handlers.delete(fn);
    };
  }

  stats(): RpcClientStats {
    return { ...this.counters, errors: { ...this.errors } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    this.pause?.wake();
    const loop = this.loop;
    this.closeSocket();
    this.failPending(false, 'rpc client is closed');
    await loop;
  }

  private async callSubscription(subscription: Subscription): Promise<unknown> {
    const reply = await this.request(subscription.method, subscription.body);
    try {
      subscription.onReply?.(reply);
    } catch (err) {
      this.logger.error({ err, method: subscription.method }, 'rpc: subscription reply handler failed');
    }
    return reply;
  }

  /** Resolves and connects; keeps trying an interval apart until it succeeds or the client closes. */
  private async connect(): Promise<boolean> {
    while (!this.closed) {
      try {
        const endpoint = await this.resolve();
        if (this.closed) break;
        checkEndpoint('resolver result', endpoint);
        this.open(endpoint);
        return true;
      } catch (err) {
        if (this.closed) break;
        this.logger.warn({ err }, 'rpc: cannot resolve server endpoint, will retry');
        this.emit('resolveFailed', err);
        await this.sleep(this.heartbeatIntervalMs);
      }
    }
    return false;
  }

  private open(endpoint: string): void {
    const socket = new Dealer({
      linger: 0,
      // Never wait to queue: a full queue fails the request now instead of piling up in memory.
      sendTimeout: 0,
      ...(this.curve
        ? {
            curveServerKey: this.curve.serverPublicKey,
            curvePublicKey: this.curve.publicKey,
            curveSecretKey: this.curve.secretKey,
          }
        : {}),
    });
    try {
      socket.connect(endpoint);
    } catch (err) {
      socket.close();
      throw err;
    }
    this.socket = socket;
    this.current = endpoint;
    const generation = ++this.generation;
    this.lastHeard = performance.now();
    this.loop = this.receive(socket, generation);
    this.sendFrame(HEARTBEAT_FRAME);
    const queued = this.queued;
    this.queued = [];
    for (const { id, frame } of queued) if (this.pending.has(id)) this.write(id, frame);
  }

  private async receive(socket: Dealer, generation: number): Promise<void> {
    try {
      for await (const frames of socket) {
        if (generation !== this.generation) break;
        this.lastHeard = performance.now();
        this.onMessage(frames);
      }
    } catch (err) {
      if (!this.closed && generation === this.generation)
        this.logger.error({ err }, 'rpc: client receive failed');
    }
  }

  private onMessage(frames: Buffer[]): void {
    const result = frames.length === 1 ? decodeEnvelope(frames[0] as Buffer, Number.POSITIVE_INFINITY) : null;
    if (!result?.ok) {
      this.counters.malformed++;
      return;
    }
    const { kind, id, method, body } = result.envelope;
    switch (kind) {
      case RpcKind.Reply: {
        const pending = this.take(id);
        if (!pending) return;
        this.counters.replies++;
        pending.resolve(body);
        return;
      }
      case RpcKind.Error: {
        const pending = this.take(id);
        if (!pending) return;
        const { code, message } = errorBody(body);
        this.errors[code] = (this.errors[code] ?? 0) + 1;
        pending.reject(new RpcError(code as RpcErrorCode, message));
        return;
      }
      case RpcKind.Push:
        this.onPushMessage(method, body);
        return;
      default:
        this.counters.malformed++;
    }
  }

  private onPushMessage(method: string, body: unknown): void {
    if (method === HEARTBEAT_METHOD) {
      this.counters.heartbeats++;
      return;
    }
    if (method === DROPPED_METHOD) {
      this.logger.warn(
        { endpoint: this.current },
        'rpc: server dropped our subscriptions, subscribing again',
      );
      void this.replaySubscriptions('server');
      return;
    }
    this.counters.pushes++;
    this.emit('push', method, body);
    const handlers = this.pushHandlers.get(method);
    if (!handlers) return;
    for (const fn of handlers) {
      try {
        fn(body);
      } catch (err) {
        this.logger.error({ err, method }, 'rpc: push handler failed');
      }
    }
  }

  /** Removes and returns the pending request `id`; counts a late reply when there is none. */
  private take(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) {
      this.counters.lateReplies++;
      return undefined;
    }
    this.pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }

  private onTimeout(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.counters.timeouts++;
    pending.reject(
      new RpcError(RpcErrorCode.Timeout, `${pending.method}: no reply within ${pending.timeoutMs} ms`),
    );
  }

  private write(id: number, frame: Buffer): void {
    const pending = this.pending.get(id);
    if (!pending || !this.socket) return;
    pending.sent = true;
    this.socket.send(frame).catch((err: unknown) => {
      const failed = this.pending.get(id);
      if (!failed) return;
      this.pending.delete(id);
      clearTimeout(failed.timer);
      this.counters.unavailable++;
      const code = (err as { code?: string }).code ?? 'error';
      failed.reject(new RpcError(RpcErrorCode.Unavailable, `${failed.method}: cannot send (${code})`));
    });
  }

  private sendFrame(frame: Buffer): void {
    this.socket?.send(frame).catch(() => {
      // A heartbeat that cannot be queued is a missed heartbeat; silence detection handles it.
    });
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.lastTick > 2 * this.heartbeatIntervalMs;
    this.lastTick = now;
    if (this.reconnecting || !this.socket) return;
    // Our own stalled event loop is not the server's silence: give it a fresh chance to answer.
    if (late) this.lastHeard = Math.max(this.lastHeard, now - this.heartbeatIntervalMs);
    const silentMs = now - this.lastHeard;
    if (silentMs > 3 * this.heartbeatIntervalMs) {
      void this.reconnect(silentMs);
      return;
    }
    this.sendFrame(HEARTBEAT_FRAME);
  }

  private async reconnect(silentMs: number): Promise<void> {
    this.reconnecting = true;
    const endpoint = this.current ?? '';
    this.counters.reconnects++;
    this.logger.warn({ endpoint, silentMs: Math.round(silentMs) }, 'rpc: server silent, reconnecting');
    this.closeSocket();
    this.failPending(true, 'connection to server lost');
    this.emit('dropped', { endpoint, silentMs });
    const connected = await this.connect();
    this.reconnecting = false;
    if (!connected) return;
    this.emit('reconnected', { endpoint: this.current ?? '' });
    await this.replaySubscriptions('reconnect');
  }

  private async replaySubscriptions(reason: 'reconnect' | 'server'): Promise<void> {
    if (this.subscriptions.length === 0 || this.closed) return;
    const results = await Promise.allSettled(this.subscriptions.map((s) => this.callSubscription(s)));
    if (this.closed) return;
    const failed = results.filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.logger.warn({ failed, reason }, 'rpc: some subscriptions could not be replayed');
    this.counters.resubscribes++;
    this.emit('resubscribed', { endpoint: this.current ?? '', count: results.length, failed, reason });
  }

  private closeSocket(): void {
    this.generation++;
    this.socket?.close();
    this.socket = null;
  }

  /** Fails requests with `Unavailable`: only those already sent, or every one. */
  private failPending(sentOnly: boolean, why: string): void {
    for (const [id, pending] of this.pending) {
      if (sentOnly && !pending.sent) continue;
      this.pending.delete(id);
      clearTimeout(pending.timer);
      this.counters.unavailable++;
      pending.reject(new RpcError(RpcErrorCode.Unavailable, `${pending.method}: ${why}`));
    }
    if (!sentOnly) this.queued = [];
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.pause = null;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.pause = { timer, wake };
    });
  }
}

function errorBody(body: unknown): { code: number; message: string } {
  const { code, message } = (body ?? {}) as { code?: unknown; message?: unknown };
  return {
    code: typeof code === 'number' ? code : RpcErrorCode.Internal,
    message: typeof message === 'string' ? message : 'error without a message',
  };
}

const ENDPOINT_PATTERN = /^(tcp|ipc|inproc):\/\/.+/;

function checkEndpoint(field: string, endpoint: unknown): string {
  if (typeof endpoint !== 'string' || !ENDPOINT_PATTERN.test(endpoint)) {
    throw new TypeError(
      `${field} must be a ZeroMQ endpoint such as tcp://127.0.0.1:28000, got ${String(endpoint)}`,
    );
  }
  return endpoint;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_HEARTBEAT_MS = 1000;

/**
 * Creates a client for the server at `target`: a fixed endpoint, or a resolver called at start and
 * after every lost connection (a server may come back on another port). Requests made before the
 * first connection wait for it, within their deadline.
 *
 * @example
 * const jm = createRpcClient(() => registry.endpointOf('jobmanager'));
 * await jm.subscribe('jm.subscribe', { stratumId, chain }, ({ job }) => job && notify(job));
 * jm.onPush('job', notify);
 */
export function createRpcClient<M extends MethodMap<M> = RpcMethods, P extends object = RpcPushes>(
  target: string | RpcEndpointResolver,
  options: RpcClientOptions = {},
): RpcClient<M, P> {
  let resolve: RpcEndpointResolver;
  if (typeof target === 'function') {
    resolve = target;
  } else {
    const endpoint = checkEndpoint('endpoint', target);
    resolve = () => Promise.resolve(endpoint);
  }
  const timeoutMs = checkPositive('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS);
  const heartbeatIntervalMs = checkPositive(
    'heartbeatIntervalMs',
    options.heartbeatIntervalMs,
    DEFAULT_HEARTBEAT_MS,
  );
  if (options.curve) {
    checkCurveKey('curve.serverPublicKey', options.curve.serverPublicKey);
    checkCurveKey('curve.publicKey', options.curve.publicKey);
    checkCurveKey('curve.secretKey', options.curve.secretKey);
  }
  const curve = options.curve ? { ...options.curve } : undefined;
  const client = new RpcClientImpl(
    resolve,
    timeoutMs,
    heartbeatIntervalMs,
    curve,
    options.logger ?? silentLogger,
  );
  return client as unknown as RpcClient<M, P>;
}
