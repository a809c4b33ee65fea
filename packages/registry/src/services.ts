import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { KeyBuilder, ServiceEventData, ServiceState as ServiceEventState } from '@hashwire/protocol';
import { EVENTS_MAX_LEN } from './events.js';
import { type RedisClient, duplicateRedis } from './redis.js';
import { runScript } from './scripts.js';

export type ServiceState = 'up' | 'draining';

/** What one live service publishes about itself in `svc:{kind}:{id}`. */
export interface ServiceInfo {
  kind: string;
  id: string;
  rpc: string;
  http: string;
  pid: number;
  version: string;
  chain: string;
  state: ServiceState;
  /** The resolvers' sort key: the first of `loadFigures`, or what `update({ load })` set. */
  load: number;
  /**
   * What the service measured at its last refresh, by name: stratum `connections`, `sessions`;
   * reporter `batchesPerS`, `sharesPerS`; jobmanager `subscribers`, `jobsPerMin`. Stored as
   * `load.<name>` fields of the hash.
   */
  loadFigures?: Record<string, number>;
  startedAt: number;
  /** Stratum servers: the miners' TCP endpoint, `host:port` (what HAProxy's backend points at). */
  stratum?: string;
  /** Stratum servers: `host:port` of the HAProxy agent-check listener (reports up/drain/down). */
  agent?: string;
  /** Api servers: the base URL of the public HTTP API (`http://host:port`). */
  api?: string;
  /**
   * The CURVE public key (Z85) of the RPC server at `rpc`, when it uses CURVE: clients learn the
   * server key here and must connect with CURVE and a key the server allows.
   */
  curveKey?: string;
  /**
   * Reporters: the `reporter.shares` wire they speak (`SHARES_WIRE` of their release). Absent
   * from reporters of releases before it; stratum servers send only to reporters of their own wire.
   */
  sharesWire?: number;
  /** The host the process runs on (`os.hostname()`); absent from releases before it. */
  host?: string;
}

export interface RegisterServiceOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  kind: string;
  id: string;
  rpc?: string;
  http?: string;
  version?: string;
  chain?: string;
  load?: number;
  /**
   * Asked before every refresh (each ttlMs/3, and on `update`): the service's load figures, the
   * first of which becomes `load`. Rates are the caller's to measure (`createRateMeter`).
   */
  measureLoad?: () => Record<string, number>;
  /** Miners' TCP endpoint `host:port` (stratum servers). */
  stratum?: string;
  /** HAProxy agent-check endpoint `host:port` (stratum servers). */
  agent?: string;
  /** Api servers: the base URL of the public HTTP API. */
  api?: string;
  /** The CURVE public key (Z85) of the RPC server at `rpc`, when it uses CURVE. */
  curveKey?: string;
  /** Reporters: the `reporter.shares` wire they speak. */
  sharesWire?: number;
  /**
   * Lifetime of the hash without a refresh; refreshed every ttlMs/3.
   * @defaultValue 60000
   */
  ttlMs?: number;
  /** Called when a refresh fails (Redis away); the registration keeps trying. */
  onError?: (error: Error) => void;
  /**
   * The service's process id, as its supervisor knows it (a stratum worker registers its
   * master's). @defaultValue process.pid
   */
  pid?: number;
}

export interface ServiceRegistration {
  readonly info: Readonly<ServiceInfo>;
  /**
   * Change state or load; announced to watchers at once. A change to `draining` also emits
   * `service.<kind>.draining` into the pool's event stream.
   */
  update(
    change: Partial<Pick<ServiceInfo, 'state' | 'load' | 'rpc' | 'http' | 'stratum' | 'agent' | 'api'>>,
  ): Promise<void>;
  /** `update({ state: 'draining' })`, saying why in the `service.<kind>.draining` event. */
  drain(reason?: string): Promise<void>;
  /** Refresh now (also done on a timer and whenever the Redis connection comes back). */
  refresh(): Promise<void>;
  /**
   * Remove the hash at once and announce `down`, to watchers and as `service.<kind>.down` in
   * the pool's event stream with `reason`.
   * @defaultValue reason 'closed'
   */
  close(reason?: string): Promise<void>;
  /**
   * Stops refreshing without removing the hash or announcing anything: the next process of the
   * same id (a stratum master's next worker) registers over it before its TTL runs out.
   * Resolves once a write already under way is done, so nothing of this process lands after it.
   */
  release(): Promise<void>;
}

export const DEFAULT_SERVICE_TTL_MS = 60_000;

const LOAD_FIELD = 'load.';

function toFields(info: ServiceInfo): string[] {
  const { loadFigures, ...plain } = info;
  const fields = Object.entries(plain).flatMap(([k, v]) => (v === undefined ? [] : [k, String(v)]));
  for (const [name, value] of Object.entries(loadFigures ?? {}))
    fields.push(`${LOAD_FIELD}${name}`, String(value));
  return fields;
}

/**
 * A per-second rate of a growing count over a sliding window: each call samples `count()` and
 * returns (count now − count at the oldest sample within `windowMs`) / elapsed seconds; 0 until
 * two samples exist. For `measureLoad`: `batchesPerS: batchRate()`.
 */
export function createRateMeter(count: () => number, windowMs = 60_000): () => number {
  const samples: { at: number; value: number }[] = [];
  return () => {
    const now = performance.now();
    samples.push({ at: now, value: count() });
    while (samples.length > 2 && now - (samples[1] as { at: number }).at >= windowMs) samples.shift();
    const first = samples[0] as { at: number; value: number };
    const elapsedS = (now - first.at) / 1000;
    if (samples.length < 2 || elapsedS <= 0) return 0;
    return Math.max(0, (count() - first.value) / elapsedS);
  };
}

/** A figure as status shows it: integers as they are, rates to 3 significant digits. */
function roundFigure(value: number): number {
  if (!Number.isFinite(value)) return 0;
  return Number.isInteger(value) ? value : Number(value.toPrecision(3));
}

/** Another live process is registered under the id a service was started with. */
export class ServiceIdInUseError extends Error {
  override readonly name = 'ServiceIdInUseError';
}

/** Whether a process of this host is alive (signal 0: EPERM means it exists, as another user's). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Refuses to start a second process under a live service's id: two jobmanagers of one id would
 * both hold its lease (one epoch, two sets of jobs), two payers would both pay. The id is free
 * when nothing is registered under it, when the registration is this process's (`pid`: a stratum
 * worker registers its master's, which an upgrade's new worker shares), or when its process, on
 * this host, is gone (a restart after a crash need not wait for the TTL). A registration from
 * another host holds the id until its TTL lapses.
 */
export async function checkServiceIdFree(
  redis: RedisClient,
  keys: KeyBuilder,
  kind: string,
  id: string,
  pid: number = process.pid,
): Promise<void> {
  const [host, registeredPid] = await redis.hmget(keys.service(kind, id), 'host', 'pid');
  const other = Number(registeredPid);
  // Nothing there, this process, or a release that did not record its host (no way to tell).
  if (!registeredPid || other === pid || !host) return;
  if (host === hostname()) {
    if (!processAlive(other)) return;
    throw new ServiceIdInUseError(
      `${kind} ${id} is already running (pid ${other} on this host): each process needs its own id`,
    );
  }
  throw new ServiceIdInUseError(
    `${kind} ${id} is registered by pid ${other} on host ${host}: each process needs its own id (a registration whose process is gone lapses after the service TTL)`,
  );
}

/** Registers a service and keeps its TTL hash alive until `close()`. */
export async function registerService(options: RegisterServiceOptions): Promise<ServiceRegistration> {
  const { redis, keys, kind, id } = options;
  const ttlMs = options.ttlMs ?? DEFAULT_SERVICE_TTL_MS;
  const info: ServiceInfo = {
    kind,
    id,
    rpc: options.rpc ?? '',
    http: options.http ?? '',
    pid: options.pid ?? process.pid,
    host: hostname(),
    version: options.version ?? '0.0.0',
    chain: options.chain ?? '',
    state: 'up',
    load: options.load ?? 0,
    startedAt: Date.now(),
    ...(options.stratum !== undefined && { stratum: options.stratum }),
    ...(options.agent !== undefined && { agent: options.agent }),
    ...(options.api !== undefined && { api: options.api }),
    ...(options.curveKey !== undefined && { curveKey: options.curveKey }),
    ...(options.sharesWire !== undefined && { sharesWire: options.sharesWire }),
  };
  await checkServiceIdFree(redis, keys, kind, id, info.pid);
  const serviceKey = keys.service(kind, id);
  const indexKey = keys.serviceIndex(kind);
  const channel = keys.serviceChannel();
  let closed = false;
  // What the pool stream last said of this registration (the announced hash's value), and
  // whether it still has to hear `up`: at the first write, and whenever the hash had to be
  // created again (it expired or Redis lost it: the stream said or will say `down`).
  let announced = '';
  let upPending = true;
  // Writes and announcements one at a time (the timer, a reconnect and a caller's update may
  // overlap): the stream gets each change once and in order.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(step: () => Promise<T>): Promise<T> => {
    const run = queue.then(step, step);
    queue = run.catch(() => {});
    return run;
  };
  const announce = async (state: ServiceEventState, reason?: string): Promise<void> => {
    const data = (why?: string): ServiceEventData => ({
      kind,
      id,
      version: info.version,
      ...(info.chain !== '' && { chain: info.chain }),
      ...(why !== undefined && { reason: why }),
    });
    const value = await emitServiceEvent(
      redis,
      keys,
      kind,
      id,
      state,
      announced,
      data(reason),
      data(GONE_REASON),
    );
    if (value !== null) announced = value;
  };

  const write = async (announceChange: boolean) => {
    if (options.measureLoad) {
      try {
        const figures: Record<string, number> = {};
        for (const [name, value] of Object.entries(options.measureLoad())) figures[name] = roundFigure(value);
        info.loadFigures = figures;
        const first = Object.values(figures)[0];
        if (first !== undefined) info.load = first;
      } catch {
        // a failing measurement must not stop the registration: the last figures stay
      }
    }
    const created = await runScript(
      redis,
      'register',
      [serviceKey, indexKey],
      [id, ttlMs, channel, kind, announceChange ? '1' : '0', ...toFields(info)],
    );
    if (created === 1) upPending = true;
    if (upPending && !closed) {
      await announce('up');
      upPending = false;
      if (info.state === 'draining') await announce('draining');
    }
  };
  const refreshMs = Math.max(10, Math.floor(ttlMs / 3));
  const refresh = async () => {
    if (closed) return;
    try {
      await serial(() => write(false));
      // One live service per round (whichever refreshes first once the last round's second is
      // up) looks for registrations that expired without closing: at most one sweep a second for
      // the pool, however many services, instead of one per service per refresh.
      if ((await redis.set(keys.serviceSweep(), id, 'PX', SWEEP_EVERY_MS, 'NX')) === 'OK')
        await sweepServiceEvents(redis, keys);
    } catch (error) {
      options.onError?.(error as Error);
    }
  };
  // After Redis restarts without persistence the hash is gone: put it back at once rather
  // than waiting up to ttlMs/3 for the timer.
  const onReady = () => void refresh();
  redis.on('ready', onReady);
  const timer = setInterval(refresh, refreshMs);
  timer.unref();
  await serial(() => write(false));

  const update = (change: Parameters<ServiceRegistration['update']>[0], reason?: string) =>
    serial(async () => {
      const wasDraining = info.state === 'draining';
      Object.assign(info, change);
      await write(true);
      if (!wasDraining && info.state === 'draining') await announce('draining', reason);
    });

  return {
    info,
    refresh,
    update: (change) => update(change),
    drain: (reason) => update({ state: 'draining' }, reason),
    async release() {
      closed = true;
      clearInterval(timer);
      redis.off('ready', onReady);
      await serial(async () => {});
    },
    async close(reason = 'closed') {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      redis.off('ready', onReady);
      // The event first: if this process dies before the hash is gone, whoever finds the hash
      // expired sees `down` already said and says nothing.
      await serial(async () => {
        try {
          await announce('down', reason);
        } finally {
          await runScript(redis, 'deregister', [serviceKey, indexKey], [id, channel, kind]);
        }
      });
    },
  };
}

/** One sweep for expired registrations per this long for the whole pool (`keys.serviceSweep`). */
const SWEEP_EVERY_MS = 1000;
/** The reason of the `down` emitted for a registration nobody saw go before it registered again. */
const GONE_REASON = 'went without closing';
/** The reason of the `down` emitted for a registration found expired. */
export const EXPIRED_REASON = 'ttl expired';

/**
 * Emits `service.<kind>.<state>` into the pool's stream (`service-event.lua`) when what the
 * stream last said of the service is `expected` (not checked for `up`); returns the new
 * announced value, or null when it emitted nothing.
 */
async function emitServiceEvent(
  redis: RedisClient,
  keys: KeyBuilder,
  kind: string,
  id: string,
  state: ServiceEventState,
  expected: string,
  data: ServiceEventData,
  goneData: ServiceEventData | null = null,
): Promise<string | null> {
  const value = await runScript(
    redis,
    'service-event',
    [keys.announcedServices(), keys.poolEvents()],
    [
      `${kind} ${id}`,
      kind,
      state,
      expected,
      Date.now(),
      EVENTS_MAX_LEN,
      JSON.stringify(data),
      goneData ? JSON.stringify(goneData) : '',
    ],
  );
  return typeof value === 'string' ? value : null;
}

/**
 * Emits `service.<kind>.down` (reason `ttl expired`) for every service the pool stream still
 * has up or draining whose registration expired without closing (a SIGKILLed process). Any
 * number of processes may sweep at once: each `down` is emitted once (a compare-and-set on
 * what the stream last said). A registration sweeps at its refresh when no service of the pool
 * swept in the last second (the `serviceSweep` lease). The EXISTS go out together. Returns how many
 * `down` events this call emitted.
 */
export async function sweepServiceEvents(redis: RedisClient, keys: KeyBuilder): Promise<number> {
  // Each field once: '<kind> <id>' with its service key (fields this module did not write are skipped).
  const announced = Object.entries(await redis.hgetall(keys.announcedServices())).flatMap(
    ([field, value]) => {
      const space = field.indexOf(' ');
      const kind = field.slice(0, space);
      const id = field.slice(space + 1);
      try {
        return [{ kind, id, value, serviceKey: keys.service(kind, id) }];
      } catch {
        return [];
      }
    },
  );
  const gone = await Promise.all(announced.map(async (a) => (await redis.exists(a.serviceKey)) === 0));
  let downs = 0;
  for (const [i, { kind, id, value }] of announced.entries()) {
    if (!gone[i]) continue;
    const emitted = await emitServiceEvent(redis, keys, kind, id, 'down', value, {
      kind,
      id,
      reason: EXPIRED_REASON,
    });
    if (emitted !== null) downs++;
  }
  return downs;
}

function loadFiguresOf(hash: Record<string, string>): { loadFigures?: Record<string, number> } {
  const figures: Record<string, number> = {};
  let any = false;
  for (const [field, value] of Object.entries(hash)) {
    if (!field.startsWith(LOAD_FIELD)) continue;
    const n = Number(value);
    if (!Number.isFinite(n)) continue;
    figures[field.slice(LOAD_FIELD.length)] = n;
    any = true;
  }
  return any ? { loadFigures: figures } : {};
}

function parseInfo(hash: Record<string, string>): ServiceInfo | null {
  if (!hash.id || !hash.kind) return null;
  return {
    kind: hash.kind,
    id: hash.id,
    rpc: hash.rpc ?? '',
    http: hash.http ?? '',
    pid: Number(hash.pid ?? 0),
    version: hash.version ?? '',
    chain: hash.chain ?? '',
    state: hash.state === 'draining' ? 'draining' : 'up',
    load: Number(hash.load ?? 0),
    startedAt: Number(hash.startedAt ?? 0),
    ...loadFiguresOf(hash),
    ...(hash.stratum && { stratum: hash.stratum }),
    ...(hash.agent && { agent: hash.agent }),
    ...(hash.api && { api: hash.api }),
    ...(hash.curveKey && { curveKey: hash.curveKey }),
    ...sharesWireOf(hash.sharesWire),
    ...(hash.host && { host: hash.host }),
  };
}

function sharesWireOf(field: string | undefined): { sharesWire?: number } {
  const wire = Number(field);
  return field !== undefined && Number.isSafeInteger(wire) && wire > 0 ? { sharesWire: wire } : {};
}

/** Live services of a kind, read from their TTL hashes (expired ones are not listed). */
export async function listServices(
  redis: RedisClient,
  keys: KeyBuilder,
  kind: string,
): Promise<ServiceInfo[]> {
  const ids = await redis.zrange(keys.serviceIndex(kind), 0, -1);
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hgetall(keys.service(kind, id));
  const replies = (await pipeline.exec()) ?? [];
  const services: ServiceInfo[] = [];
  for (const [error, hash] of replies) {
    if (error) throw error;
    const info = parseInfo(hash as Record<string, string>);
    if (info) services.push(info);
  }
  return services;
}

export async function getService(
  redis: RedisClient,
  keys: KeyBuilder,
  kind: string,
  id: string,
): Promise<ServiceInfo | null> {
  return parseInfo(await redis.hgetall(keys.service(kind, id)));
}

export interface ServiceEvent {
  type: 'up' | 'down' | 'changed';
  service: ServiceInfo;
}

export interface WatchServicesOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  kind: string;
  /**
   * How often the watcher re-reads the index to notice services whose TTL ran out
   * (a SIGKILLed process announces nothing).
   * @defaultValue 1000
   */
  reconcileMs?: number;
  /**
   * After the Redis connection comes back, how long to wait before believing a service
   * is gone (it may not have re-registered yet after a Redis restart).
   * @defaultValue 5000
   */
  graceAfterReconnectMs?: number;
}

export interface ServiceWatcher extends EventEmitter<{ event: [ServiceEvent]; error: [Error] }> {
  /** The services currently believed live (kept as they were while Redis is unreachable). */
  readonly services: ReadonlyMap<string, ServiceInfo>;
  /** Resolves once the initial list has been read. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

function sameInfo(a: ServiceInfo, b: ServiceInfo): boolean {
  return (
    a.rpc === b.rpc &&
    a.http === b.http &&
    a.state === b.state &&
    // Not load: it moves at every refresh, and no watcher acts on it (resolvers read it fresh).
    a.pid === b.pid &&
    a.version === b.version &&
    a.startedAt === b.startedAt &&
    a.stratum === b.stratum &&
    a.agent === b.agent &&
    a.api === b.api &&
    a.curveKey === b.curveKey &&
    a.sharesWire === b.sharesWire
  );
}

/**
 * Watches one kind of service: `up` as soon as one is announced (pub/sub, well under a
 * second), `changed` on state/load/endpoint changes, `down` on a graceful close at once or
 * when a TTL runs out (found by the periodic reconcile). While Redis is unreachable the last
 * known set is kept and nothing is reported down.
 */
export function watchServices(options: WatchServicesOptions): ServiceWatcher {
  const { redis, keys, kind } = options;
  const reconcileMs = options.reconcileMs ?? 1000;
  const graceMs = options.graceAfterReconnectMs ?? 5000;
  const services = new Map<string, ServiceInfo>();
  const emitter = new EventEmitter<{ event: [ServiceEvent]; error: [Error] }>();
  const subscriber = duplicateRedis(redis);
  const channel = keys.serviceChannel();
  let closed = false;
  let holdDownsUntil = 0;
  let reconnecting = false;

  const emit = (type: ServiceEvent['type'], service: ServiceInfo) => emitter.emit('event', { type, service });
  // Redis being away is expected; an 'error' event without a listener would crash the process.
  const report = (error: Error) => {
    if (emitter.listenerCount('error') > 0) emitter.emit('error', error);
  };

  const apply = (id: string, info: ServiceInfo | null) => {
    const known = services.get(id);
    if (info) {
      services.set(id, info);
      if (!known) emit('up', info);
      else if (!sameInfo(known, info)) emit('changed', info);
    } else if (known) {
      services.delete(id);
      emit('down', known);
    }
  };

  const reconcile = async () => {
    const live = await listServices(redis, keys, kind);
    const liveIds = new Set(live.map((s) => s.id));
    for (const info of live) apply(info.id, info);
    if (Date.now() >= holdDownsUntil) {
      for (const id of [...services.keys()]) if (!liveIds.has(id)) apply(id, null);
    }
    // Index entries of services whose hash expired long ago.
    await redis.zremrangebyscore(keys.serviceIndex(kind), '-inf', Date.now() - 10 * 60_000);
  };

  subscriber.on('message', (_channel: string, message: string) => {
    let note: { event?: string; kind?: string; id?: string };
    try {
      note = JSON.parse(message);
    } catch {
      return;
    }
    if (closed || note.kind !== kind || typeof note.id !== 'string') return;
    const id = note.id;
    if (note.event === 'down') {
      apply(id, null);
      return;
    }
    getService(redis, keys, kind, id).then((info) => {
      if (!closed && info) apply(id, info);
    }, report);
  });
  const onClose = () => {
    reconnecting = true;
  };
  redis.on('close', onClose);
  const onReady = () => {
    if (reconnecting) holdDownsUntil = Date.now() + graceMs;
    reconnecting = false;
  };
  redis.on('ready', onReady);

  const timer = setInterval(() => {
    if (closed) return;
    reconcile().catch(report);
  }, reconcileMs);
  timer.unref();

  const ready = (async () => {
    await subscriber.subscribe(channel);
    await reconcile();
  })();

  return Object.assign(emitter, {
    services,
    ready,
    async close() {
      closed = true;
      clearInterval(timer);
      redis.off('ready', onReady);
      redis.off('close', onClose);
      subscriber.disconnect();
    },
  });
}

/** Thrown by a resolver when no live service of the kind (or with the id) is registered. */
export class ServiceNotFoundError extends Error {
  override readonly name = 'ServiceNotFoundError';
}

/**
 * An endpoint resolver for RPC clients: the rpc endpoint of service `id`, or of the
 * least-loaded live `up` service of `kind` when no id is given. Called again by a client
 * whenever its server goes quiet, so a server restarted on another port is found again.
 */
export function serviceEndpointResolver(options: {
  redis: RedisClient;
  keys: KeyBuilder;
  kind: string;
  id?: string;
}): () => Promise<string> {
  const { redis, keys, kind, id } = options;
  return async () => {
    const candidates = id
      ? [await getService(redis, keys, kind, id)].filter((s): s is ServiceInfo => s !== null)
      : (await listServices(redis, keys, kind)).filter((s) => s.state === 'up');
    const best = candidates.filter((s) => s.rpc !== '').sort((a, b) => a.load - b.load)[0];
    if (!best)
      throw new ServiceNotFoundError(`no live ${kind}${id ? ` with id ${id}` : ''} with an rpc endpoint`);
    return best.rpc;
  };
}
