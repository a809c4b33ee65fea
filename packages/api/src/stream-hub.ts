import { type PoolEvent, eventNames } from '@hashwire/protocol';
import type { WebSocket } from 'ws';
import type { Authenticator, Principal } from './auth.js';
import { ApiError } from './errors.js';
import { type EventTail, EventTooOldError, seqBefore } from './event-tail.js';
import { createFilterIndex } from './filter-index.js';
import {
  type ParsedTopic,
  type Scope,
  type TopicContext,
  TopicError,
  compileGlob,
  parseTopic,
  scopeOf,
  visible,
} from './stream-topics.js';

/**
 * The live stream of one api process: its WebSocket connections, their topics indexed by
 * distinct filter (glob × stream × scope), and the ordering rules — a subscription's position
 * per stream, events after it exactly once and in order, catch-up from Redis on resume. The
 * protocol is described in the package README ("Live stream").
 */

export interface StreamHubOptions {
  tail: EventTail;
  auth: Authenticator;
  topics: TopicContext;
  /** The current state of a state topic, for a subscribe answer. */
  snapshot: (topic: ParsedTopic) => Promise<unknown>;
  /** Bytes queued to one socket past which it is closed as a slow consumer. @defaultValue 4 MiB */
  maxBufferedBytes?: number;
  /** Live events held for a socket while it takes a snapshot or catches up. @defaultValue 10000 */
  maxPendingEvents?: number;
  /** Topics one connection may hold. @defaultValue 1000 */
  maxTopicsPerConnection?: number;
  /** How often live connections are told their positions when nothing matched. @defaultValue 1000 */
  checkpointMs?: number;
  /** A connection that answers no ping for this long is dropped. @defaultValue 30000 */
  pingMs?: number;
  onError?: (error: Error) => void;
}

/** Close codes the stream uses (besides 1001, the server going away). */
export const StreamCloseCode = {
  /** The token was refused or revoked. */
  Unauthorized: 4001,
  /** The socket's buffer or catch-up queue passed its bound. */
  SlowConsumer: 4008,
  /** The client broke the protocol (not JSON, too many queued operations). */
  ProtocolError: 4400,
} as const;

const PAGE = 500;
const MAX_QUEUED_OPS = 16;
const SEQ = /^\d{1,20}-\d{1,20}$/;

interface Group {
  key: string;
  glob: string;
  /** The one stream it reads, or null for every stream. */
  stream: string | null;
  scope: Scope;
  match: (name: string) => boolean;
  members: Map<Connection, number>;
  /** The event last matched against it (an event with two names may reach it twice). */
  lastEvent: PoolEvent | null;
}

interface Connection {
  socket: WebSocket;
  principal: Principal;
  scope: Scope;
  /** Whether an op other than auth was seen (auth must come first). */
  started: boolean;
  topics: Map<string, ParsedTopic>;
  /** Streams read for this connection only while it holds their topic (watch outboxes). */
  follows: Map<string, () => void>;
  positions: Record<string, string> | null;
  /** What the client was last told its positions are (by an event or a checkpoint). */
  told: Record<string, string>;
  mode: 'idle' | 'catching-up' | 'live';
  pending: PoolEvent[];
  ops: Promise<void>;
  queued: number;
  /** The last event sent: one event matched by two topics goes out once. */
  lastEvent: PoolEvent | null;
  alive: boolean;
  closed: boolean;
}

export interface StreamHub {
  /** Takes a new connection, authenticated (or public) already. */
  accept(socket: WebSocket, principal: Principal): void;
  stats(): { connections: number; filters: number; topics: number };
  close(): Promise<void>;
}

type ClientMessage = { op?: unknown; id?: unknown; [field: string]: unknown };

export function createStreamHub(options: StreamHubOptions): StreamHub {
  const { tail, auth } = options;
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const maxPending = options.maxPendingEvents ?? 10_000;
  const maxTopics = options.maxTopicsPerConnection ?? 1000;
  const connections = new Set<Connection>();
  const byToken = new Map<string, Set<Connection>>();
  /** Distinct filters (glob × stream × scope), by their glob's literal prefix. */
  const groups = createFilterIndex<Group>();
  const globs = new Map<string, (name: string) => boolean>();

  const matcher = (glob: string) => {
    let m = globs.get(glob);
    if (!m) {
      m = compileGlob(glob);
      globs.set(glob, m);
    }
    return m;
  };

  function addTopic(conn: Connection, parsed: ParsedTopic): void {
    conn.topics.set(parsed.topic, parsed);
    for (const filter of parsed.filters) {
      const key = `${filter.stream ?? ''}|${filter.glob}|${conn.scope}`;
      let group = groups.get(filter.glob, key);
      if (!group) {
        group = {
          key,
          glob: filter.glob,
          stream: filter.stream,
          scope: conn.scope,
          match: matcher(filter.glob),
          members: new Map(),
          lastEvent: null,
        };
        groups.set(filter.glob, key, group);
      }
      group.members.set(conn, (group.members.get(conn) ?? 0) + 1);
    }
  }

  function removeTopic(conn: Connection, topic: string): boolean {
    const parsed = conn.topics.get(topic);
    if (!parsed) return false;
    conn.topics.delete(topic);
    if (parsed.follow) {
      conn.follows.get(parsed.follow.stream)?.();
      conn.follows.delete(parsed.follow.stream);
      if (conn.positions) delete conn.positions[parsed.follow.stream];
      delete conn.told[parsed.follow.stream];
    }
    for (const filter of parsed.filters) {
      const group = groups.get(filter.glob, `${filter.stream ?? ''}|${filter.glob}|${conn.scope}`);
      if (!group) continue;
      const n = (group.members.get(conn) ?? 1) - 1;
      if (n > 0) group.members.set(conn, n);
      else group.members.delete(conn);
      if (group.members.size === 0) groups.delete(group.glob, group.key);
    }
    return true;
  }

  function accountOf(event: PoolEvent): string | undefined {
    const data = event.data as { account?: unknown } | null;
    return typeof data?.account === 'string' ? data.account : undefined;
  }

  /** Whether any of a connection's topics takes the event (used on catch-up, not live). */
  function takes(conn: Connection, event: PoolEvent): boolean {
    if (!visible(conn.scope, event.type, accountOf(event))) return false;
    const names = eventNames(event.type, event.data);
    for (const parsed of conn.topics.values())
      for (const filter of parsed.filters)
        if ((filter.stream === null || filter.stream === event.stream) && names.some(matcher(filter.glob)))
          return true;
    return false;
  }

  function eventText(event: PoolEvent): string {
    return JSON.stringify({ type: 'event', event });
  }

  /** `text` may be an event already encoded once for every socket it goes to. */
  function send(conn: Connection, text: string | Buffer): boolean {
    if (conn.closed) return false;
    if (conn.socket.bufferedAmount > maxBufferedBytes) {
      drop(conn, StreamCloseCode.SlowConsumer, `slow consumer: more than ${maxBufferedBytes} bytes unsent`);
      return false;
    }
    conn.socket.send(text, { binary: false });
    return true;
  }

  function reply(conn: Connection, message: Record<string, unknown>): void {
    send(conn, JSON.stringify(message));
  }

  function error(
    conn: Connection,
    id: unknown,
    code: string,
    message: string,
    extra: Record<string, unknown> = {},
  ): void {
    reply(conn, { type: 'error', ...(id !== undefined && { id }), error: { code, message, ...extra } });
  }

  /** Sends a live or caught-up event if it is after the connection's position on its stream. */
  function deliverInOrder(conn: Connection, event: PoolEvent, text?: string): void {
    const positions = conn.positions!;
    const at = positions[event.stream];
    if (at !== undefined && !seqBefore(at, event.seq)) return;
    positions[event.stream] = event.seq;
    conn.told[event.stream] = event.seq;
    send(conn, text ?? eventText(event));
  }

  function dispatch(event: PoolEvent): void {
    const names = eventNames(event.type, event.data);
    const account = accountOf(event);
    let text: Buffer | undefined;
    groups.visit(names, (group) => {
      if (group.lastEvent === event) return;
      group.lastEvent = event;
      if (group.stream !== null && group.stream !== event.stream) return;
      if (!visible(group.scope, event.type, account) || !names.some(group.match)) return;
      for (const conn of group.members.keys()) {
        if (conn.lastEvent === event) continue;
        conn.lastEvent = event;
        if (conn.mode === 'catching-up') {
          if (conn.pending.length >= maxPending)
            drop(conn, StreamCloseCode.SlowConsumer, `slow consumer: more than ${maxPending} events waiting`);
          else conn.pending.push(event);
        } else if (conn.mode === 'live') {
          // Live events come in each stream's order: the position only moves forward.
          conn.positions![event.stream] = event.seq;
          conn.told[event.stream] = event.seq;
          // Encoded once, not once per socket.
          text ??= Buffer.from(eventText(event));
          send(conn, text);
        }
      }
    });
  }

  function flushPending(conn: Connection): void {
    const pending = conn.pending;
    conn.pending = [];
    for (const event of pending) deliverInOrder(conn, event);
    conn.mode = 'live';
  }

  function drop(conn: Connection, code: number, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    for (const topic of [...conn.topics.keys()]) removeTopic(conn, topic);
    for (const release of conn.follows.values()) release();
    conn.follows.clear();
    conn.pending = [];
    connections.delete(conn);
    const principal = conn.principal;
    if (principal.kind !== 'public') byToken.get(principal.tokenId)?.delete(conn);
    try {
      conn.socket.close(code, reason.slice(0, 120));
    } catch {
      conn.socket.terminate();
    }
  }

  function parseTopics(conn: Connection, id: unknown, topics: unknown): ParsedTopic[] | null {
    if (!Array.isArray(topics) || topics.length === 0) {
      error(conn, id, 'bad_request', 'topics: expected a non-empty array of topic strings', {
        field: 'topics',
      });
      return null;
    }
    const parsed: ParsedTopic[] = [];
    try {
      for (const topic of topics) parsed.push(parseTopic(options.topics, topic, conn.principal));
    } catch (e) {
      if (!(e instanceof TopicError)) throw e;
      error(conn, id, e.code, e.message, { field: 'topics' });
      return null;
    }
    const fresh = new Set(parsed.map((p) => p.topic).filter((t) => !conn.topics.has(t)));
    if (conn.topics.size + fresh.size > maxTopics) {
      error(conn, id, 'bad_request', `topics: at most ${maxTopics} topics per connection`, {
        field: 'topics',
      });
      return null;
    }
    return parsed;
  }

  /** Starts reading the watch outboxes the topics name (before positions are taken). */
  async function holdStreams(conn: Connection, parsed: ParsedTopic[]): Promise<void> {
    for (const p of parsed) {
      if (!p.follow || conn.follows.has(p.follow.stream)) continue;
      const release = await tail.follow(p.follow.stream, p.follow.key);
      if (conn.closed || conn.follows.has(p.follow.stream)) release();
      else conn.follows.set(p.follow.stream, release);
    }
  }

  /** The streams a connection reads: every chain's, the pool's, its watch outboxes. */
  const streamsOf = (conn: Connection) => [...tail.streams, ...conn.follows.keys()];

  async function subscribe(conn: Connection, message: ClientMessage): Promise<void> {
    const { id } = message;
    const parsed = parseTopics(conn, id, message.topics);
    if (!parsed) return;
    await tail.ready();
    await holdStreams(conn, parsed);
    if (conn.closed) return;
    // Positions and the index change in one tick: every event after these positions either
    // is dispatched to this connection from now on or was given with the positions.
    conn.mode = 'catching-up';
    const now = tail.positions();
    const positions: Record<string, string> = { ...conn.positions };
    for (const stream of streamsOf(conn)) positions[stream] = now[stream] ?? '0-0';
    conn.positions = positions;
    for (const p of parsed) if (!conn.topics.has(p.topic)) addTopic(conn, p);
    const snapshot: Record<string, unknown> = {};
    try {
      await Promise.all(
        parsed
          .filter((p) => p.state)
          .map(async (p) => {
            snapshot[p.topic] = await options.snapshot(p);
          }),
      );
    } catch (e) {
      options.onError?.(e as Error);
      for (const p of parsed) removeTopic(conn, p.topic);
      flushPending(conn);
      error(conn, id, 'internal', 'could not read the snapshot; try again');
      return;
    }
    conn.told = { ...positions };
    reply(conn, {
      type: 'subscribed',
      ...(id !== undefined && { id }),
      topics: parsed.map((p) => p.topic),
      positions,
      snapshot,
    });
    flushPending(conn);
  }

  async function resume(conn: Connection, message: ClientMessage): Promise<void> {
    const { id } = message;
    if (conn.positions !== null) {
      error(conn, id, 'bad_request', 'resume: only as the first subscription of a connection', {
        field: 'op',
      });
      return;
    }
    const given = message.positions;
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      error(conn, id, 'bad_request', 'positions: expected an object of stream → seq', { field: 'positions' });
      return;
    }
    const parsed = parseTopics(conn, id, message.topics);
    if (!parsed) return;
    const wanted = [...tail.streams, ...parsed.flatMap((p) => (p.follow ? [p.follow.stream] : []))];
    const positions: Record<string, string> = {};
    for (const stream of wanted) {
      const seq = (given as Record<string, unknown>)[stream];
      if (typeof seq !== 'string' || !SEQ.test(seq)) {
        error(conn, id, 'bad_request', `positions.${stream}: expected a seq such as "1700000000000-0"`, {
          field: `positions.${stream}`,
        });
        return;
      }
      positions[stream] = seq;
    }
    for (const stream of Object.keys(given)) {
      if (!wanted.includes(stream)) {
        error(
          conn,
          id,
          'bad_request',
          `positions.${stream}: not a stream of these topics (${wanted.join(', ')})`,
          {
            field: `positions.${stream}`,
          },
        );
        return;
      }
    }
    await tail.ready();
    await holdStreams(conn, parsed);
    if (conn.closed) return;
    conn.mode = 'catching-up';
    conn.positions = positions;
    for (const p of parsed) addTopic(conn, p);
    try {
      for (const stream of wanted) {
        for (;;) {
          const page = await tail.range(stream, positions[stream]!, PAGE);
          if (conn.closed) return;
          for (const event of page) {
            if (takes(conn, event)) deliverInOrder(conn, event);
            else if (seqBefore(positions[stream]!, event.seq)) positions[stream] = event.seq;
          }
          if (page.length < PAGE) break;
        }
      }
    } catch (e) {
      for (const p of parsed) removeTopic(conn, p.topic);
      conn.positions = null;
      conn.pending = [];
      conn.mode = 'idle';
      if (e instanceof EventTooOldError) {
        error(conn, id, 'too_old', `${e.message}: subscribe again (without positions) for a new snapshot`, {
          stream: e.stream,
          oldest: e.oldest,
        });
        return;
      }
      options.onError?.(e as Error);
      error(conn, id, 'internal', 'could not read the streams to catch up; try again');
      return;
    }
    flushPending(conn);
    conn.told = { ...positions };
    reply(conn, {
      type: 'resumed',
      ...(id !== undefined && { id }),
      topics: parsed.map((p) => p.topic),
      positions,
    });
  }

  function unsubscribe(conn: Connection, message: ClientMessage): void {
    const { id, topics } = message;
    if (!Array.isArray(topics) || topics.some((t) => typeof t !== 'string')) {
      error(conn, id, 'bad_request', 'topics: expected an array of topic strings', { field: 'topics' });
      return;
    }
    const removed = (topics as string[]).filter((t) => removeTopic(conn, t));
    reply(conn, { type: 'unsubscribed', ...(id !== undefined && { id }), topics: removed });
  }

  async function authenticate(conn: Connection, message: ClientMessage): Promise<void> {
    const { id, token } = message;
    if (conn.started || conn.principal.kind !== 'public') {
      error(conn, id, 'bad_request', 'auth: only as the first message, and only once', { field: 'op' });
      return;
    }
    if (typeof token !== 'string' || token === '') {
      error(conn, id, 'bad_request', 'token: expected a string', { field: 'token' });
      return;
    }
    try {
      const principal = await auth.authenticateToken(token);
      if (conn.closed) return;
      conn.principal = principal;
      conn.scope = scopeOf(principal);
      track(conn);
      reply(conn, { type: 'authenticated', ...(id !== undefined && { id }), kind: principal.kind });
    } catch (e) {
      const message = e instanceof ApiError ? e.message : 'unknown or revoked token';
      error(conn, id, 'unauthorized', message, { field: 'token' });
      drop(conn, StreamCloseCode.Unauthorized, 'unauthorized');
    }
  }

  function track(conn: Connection): void {
    const p = conn.principal;
    if (p.kind === 'public') return;
    let set = byToken.get(p.tokenId);
    if (!set) {
      set = new Set();
      byToken.set(p.tokenId, set);
    }
    set.add(conn);
  }

  async function handle(conn: Connection, message: ClientMessage): Promise<void> {
    if (message.op === 'auth') return authenticate(conn, message);
    conn.started = true;
    switch (message.op) {
      case 'subscribe':
        return subscribe(conn, message);
      case 'resume':
        return resume(conn, message);
      case 'unsubscribe':
        return unsubscribe(conn, message);
      case 'ping':
        return reply(conn, { type: 'pong', ...(message.id !== undefined && { id: message.id }) });
      default:
        error(
          conn,
          message.id,
          'bad_request',
          `op: expected auth, subscribe, resume, unsubscribe or ping, got ${JSON.stringify(message.op)?.slice(0, 40)}`,
          { field: 'op' },
        );
    }
  }

  function onMessage(conn: Connection, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (conn.closed) return;
    let message: ClientMessage;
    try {
      if (isBinary) throw new Error('binary');
      message = JSON.parse(String(data));
      if (typeof message !== 'object' || message === null || Array.isArray(message)) throw new Error('shape');
    } catch {
      error(conn, undefined, 'bad_request', 'message: expected a JSON object with an op', {
        field: 'message',
      });
      return;
    }
    if (conn.queued >= MAX_QUEUED_OPS) {
      error(conn, message.id, 'bad_request', `message: more than ${MAX_QUEUED_OPS} operations waiting`);
      drop(conn, StreamCloseCode.ProtocolError, 'too many operations waiting');
      return;
    }
    conn.queued++;
    conn.ops = conn.ops
      .then(() => (conn.closed ? undefined : handle(conn, message)))
      .catch((e) => {
        options.onError?.(e as Error);
        error(conn, message.id, 'internal', 'internal error');
      })
      .finally(() => {
        conn.queued--;
      });
  }

  const unlisten = tail.subscribe(dispatch);
  const unrevoked = auth.onRevoked((tokenId) => {
    const set = byToken.get(tokenId);
    if (!set) return;
    byToken.delete(tokenId);
    for (const conn of set) {
      error(conn, undefined, 'unauthorized', 'token revoked');
      drop(conn, StreamCloseCode.Unauthorized, 'token revoked');
    }
  });

  // Positions move on for live connections even when none of their topics matched, so a
  // resume never has to scan (or fail on) events it would not have been given.
  // The same tick closes streams whose token has expired (revocation is pushed; expiry is not).
  const checkpoint = setInterval(() => {
    const now = tail.positions();
    const clock = Date.now();
    for (const conn of connections) {
      const expiresAt = conn.principal.kind === 'public' ? undefined : conn.principal.expiresAt;
      if (expiresAt !== undefined && expiresAt <= clock) {
        error(conn, undefined, 'unauthorized', 'token expired');
        drop(conn, StreamCloseCode.Unauthorized, 'token expired');
        continue;
      }
      if (conn.mode !== 'live' || !conn.positions) continue;
      let changed = false;
      for (const stream of Object.keys(conn.positions)) {
        const seq = now[stream];
        if (seq === undefined) continue;
        conn.positions[stream] = seq;
        if (conn.told[stream] !== seq) changed = true;
      }
      if (!changed) continue;
      conn.told = { ...conn.positions };
      reply(conn, { type: 'checkpoint', positions: conn.positions });
    }
  }, options.checkpointMs ?? 1000);
  checkpoint.unref();

  const pinger = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        drop(conn, 1001, 'no pong');
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
  }, options.pingMs ?? 30_000);
  pinger.unref();

  return {
    accept(socket, principal) {
      const conn: Connection = {
        socket,
        principal,
        scope: scopeOf(principal),
        started: false,
        topics: new Map(),
        follows: new Map(),
        positions: null,
        told: {},
        mode: 'idle',
        pending: [],
        ops: Promise.resolve(),
        queued: 0,
        lastEvent: null,
        alive: true,
        closed: false,
      };
      connections.add(conn);
      track(conn);
      socket.on('message', (data, isBinary) => onMessage(conn, data, isBinary));
      socket.on('pong', () => {
        conn.alive = true;
      });
      socket.on('close', () => drop(conn, 1000, 'closed'));
      socket.on('error', () => drop(conn, 1011, 'socket error'));
    },
    stats() {
      const filters = groups.size;
      let topics = 0;
      for (const conn of connections) topics += conn.topics.size;
      return { connections: connections.size, filters, topics };
    },
    async close() {
      clearInterval(checkpoint);
      clearInterval(pinger);
      unlisten();
      unrevoked();
      for (const conn of [...connections]) drop(conn, 1001, 'server closing');
    },
  };
}
