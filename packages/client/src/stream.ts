import type { EventName, PoolEvent } from '@hashwire/protocol';

/**
 * The live stream client: subscribes, keeps each stream's position as events arrive, and after a
 * disconnect reconnects with backoff and jitter and resumes from those positions, so the
 * listener sees every event once and in order. Runs in browsers (the global WebSocket) and in
 * Node (pass `WebSocket` from the `ws` package).
 */

/** A handler property, checked bivariantly so the browser's and `ws`'s event types both fit. */
type Handler<E> = { bivariant(event: E): void }['bivariant'];

/** The part of the WebSocket API the client uses: the browser's and `ws` both have it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `connecting` (first attempt), `catching-up` (resuming: missed events arriving), `connected` (live), `reconnecting`, `closed`. */
export type StreamState = 'connecting' | 'catching-up' | 'connected' | 'reconnecting' | 'closed';

/** stream name (a chain, or `pool`) → the seq of the last event or checkpoint received. */
export type Positions = Record<string, string>;

export interface StreamSnapshot {
  topics: string[];
  positions: Positions;
  /** State topic → its current state (what the matching REST read answers). */
  state: Record<string, unknown>;
}

/** An error the server sent (`code`: bad_request, forbidden, not_found, unauthorized, too_old, internal). */
export class StreamError extends Error {
  override readonly name = 'StreamError';
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface StreamOptions {
  /** The API's base URL (`http(s)://…`) or the stream's (`ws(s)://…/v1/stream`). */
  url: string;
  /** Topics: event globs (`block.*`) and state topics (`pool`, `account:<chain>:<addr>`…). */
  topics: string[];
  /** Sent in the first message (not in the URL, which proxies may log). */
  token?: string;
  /** @defaultValue globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** Resume from these (saved) positions instead of taking a snapshot. */
  positions?: Positions;
  /** First reconnect delay, ms (then doubling, with full jitter). @defaultValue 250 */
  backoffMs?: number;
  /** @defaultValue 30000 */
  maxBackoffMs?: number;
  /**
   * When the positions are older than the server keeps: `resubscribe` takes a new snapshot
   * (a `snapshot` event says so), `close` stops with the error. @defaultValue 'resubscribe'
   */
  onTooOld?: 'resubscribe' | 'close';
  /** Random in [0, 1) for the jitter. @defaultValue Math.random */
  random?: () => number;
}

export interface StreamListeners {
  event: (event: PoolEvent) => void;
  snapshot: (snapshot: StreamSnapshot) => void;
  state: (state: StreamState) => void;
  error: (error: StreamError) => void;
}

export interface StreamClient {
  readonly state: StreamState;
  /** The positions to resume from (null before the first snapshot). */
  readonly positions: Positions | null;
  on<K extends keyof StreamListeners>(name: K, listener: StreamListeners[K]): () => void;
  /** Resolves when the state is `state` (now or later); rejects if the client closes first. */
  until(state: StreamState): Promise<void>;
  /** Closes the socket at once (as a network failure would); the client reconnects and resumes. */
  disconnect(): void;
  close(): void;
}

type ServerMessage =
  | { type: 'event'; event: PoolEvent }
  | { type: 'subscribed'; topics: string[]; positions: Positions; snapshot: Record<string, unknown> }
  | { type: 'resumed'; topics: string[]; positions: Positions }
  | { type: 'checkpoint'; positions: Positions }
  | { type: 'authenticated'; kind: string }
  | { type: 'unsubscribed'; topics: string[] }
  | { type: 'pong' }
  | { type: 'error'; id?: unknown; error: { code: string; message: string; field?: string } };

/** The id the client gives its subscribe or resume, so their errors are told from others. */
const SUBSCRIPTION = 'subscription';

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE = new Set([4001, 4400]);

function streamUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (!u.pathname.endsWith('/v1/stream')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/stream`;
  return u.toString();
}

export function createStream(options: StreamOptions): StreamClient {
  const Ctor =
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
  if (!Ctor)
    throw new TypeError('stream: no WebSocket here; pass options.WebSocket (the ws package in Node)');
  if (!Array.isArray(options.topics) || options.topics.length === 0)
    throw new TypeError('stream: topics must be a non-empty array');
  const url = streamUrl(options.url);
  const topics = [...options.topics];
  const backoffMs = options.backoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const random = options.random ?? Math.random;
  const listeners: { [K in keyof StreamListeners]: Set<StreamListeners[K]> } = {
    event: new Set(),
    snapshot: new Set(),
    state: new Set(),
    error: new Set(),
  };
  let positions: Positions | null = options.positions ? { ...options.positions } : null;
  let state: StreamState = 'connecting';
  let socket: WebSocketLike | null = null;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;

  function emit<K extends keyof StreamListeners>(name: K, ...args: Parameters<StreamListeners[K]>): void {
    for (const listener of listeners[name]) (listener as (...a: unknown[]) => void)(...args);
  }

  function setState(next: StreamState): void {
    if (state === next) return;
    state = next;
    emit('state', next);
  }

  function sendSubscription(ws: WebSocketLike): void {
    if (positions) {
      setState('catching-up');
      ws.send(JSON.stringify({ op: 'resume', id: SUBSCRIPTION, topics, positions }));
    } else ws.send(JSON.stringify({ op: 'subscribe', id: SUBSCRIPTION, topics }));
  }

  function onMessage(ws: WebSocketLike, raw: unknown): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(String(raw)) as ServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case 'event': {
        const e = message.event;
        if (positions) positions[e.stream] = e.seq;
        emit('event', e);
        return;
      }
      case 'checkpoint':
        positions = { ...positions, ...message.positions };
        return;
      case 'subscribed':
        positions = { ...positions, ...message.positions };
        attempt = 0;
        setState('connected');
        emit('snapshot', {
          topics: message.topics,
          positions: { ...message.positions },
          state: message.snapshot,
        });
        return;
      case 'resumed':
        positions = { ...positions, ...message.positions };
        attempt = 0;
        setState('connected');
        return;
      case 'error': {
        const { code, message: text, field } = message.error;
        const error = new StreamError(code, text, field);
        if (code === 'too_old') {
          positions = null;
          if ((options.onTooOld ?? 'resubscribe') === 'resubscribe') {
            emit('error', error);
            sendSubscription(ws);
            return;
          }
          emit('error', error);
          client.close();
          return;
        }
        emit('error', error);
        if (message.id !== SUBSCRIPTION) return;
        // The subscription was refused: the same topics would be refused again (forbidden, a
        // malformed or unknown topic), except when the server could not read Redis.
        if (code === 'internal') ws.close(4000, 'retry');
        else client.close();
        return;
      }
      default:
        return;
    }
  }

  function connect(): void {
    timer = null;
    if (closed) return;
    const ws = new Ctor!(url);
    socket = ws;
    ws.onopen = () => {
      if (options.token !== undefined) ws.send(JSON.stringify({ op: 'auth', token: options.token }));
      sendSubscription(ws);
    };
    ws.onmessage = (event) => {
      if (socket === ws) onMessage(ws, event.data);
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      if (closed) return;
      if (FINAL_CLOSE.has(event.code)) {
        emit(
          'error',
          new StreamError(event.code === 4001 ? 'unauthorized' : 'protocol', event.reason || 'closed'),
        );
        client.close();
        return;
      }
      setState('reconnecting');
      // Full jitter: a restarted server is not hit by every client at the same instant.
      const ceiling = Math.min(maxBackoffMs, backoffMs * 2 ** attempt);
      attempt++;
      timer = setTimeout(connect, Math.floor(random() * ceiling));
    };
  }

  const client: StreamClient = {
    get state() {
      return state;
    },
    get positions() {
      return positions ? { ...positions } : null;
    },
    on(name, listener) {
      listeners[name].add(listener);
      return () => listeners[name].delete(listener);
    },
    until(wanted) {
      if (state === wanted) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const off = client.on('state', (s) => {
          if (s === wanted) {
            off();
            resolve();
          } else if (s === 'closed') {
            off();
            reject(new StreamError('closed', `stream closed before it was ${wanted}`));
          }
        });
      });
    },
    disconnect() {
      const ws = socket;
      if (!ws) return;
      ws.close(4000, 'client disconnect');
      // The close handshake may take a round trip; reconnect decisions wait for onclose.
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      const ws = socket;
      socket = null;
      ws?.close(1000, 'client closing');
      setState('closed');
    },
  };
  connect();
  return client;
}

export type { EventName, PoolEvent };
