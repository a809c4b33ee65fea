import type { KeyBuilder, ServiceKind } from '@hashwire/protocol';
import { type RedisClient, type ServiceInfo, type ServiceWatcher, watchServices } from '@hashwire/registry';
import {
  type ApiCheckOptions,
  apiServerCheckKeywords,
  apiServerKeywords,
  apiServerOf,
} from './haproxy-api.js';
import {
  type HaproxyServer,
  type ServerCheckOptions,
  backendServerOf,
  haproxyServerName,
  haproxyTime,
  serverAgentKeywords,
  serverKeywords,
} from './haproxy-render.js';
import { RenderInputError } from './input.js';
import type { HaproxyRuntime, ServerState } from './runtime.js';

/** pino-compatible; everything the follower says. */
export interface FollowerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface FollowStratumServersOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** The HAProxy whose backend follows the registry. */
  runtime: HaproxyRuntime;
  /** Name of the stratum backend (`backend.name` of the rendered file). */
  backend: string;
  /** Only stratum servers of this chain; all when omitted. */
  chain?: string;
  /** The same check settings the file was rendered with (servers added at runtime get them). */
  check?: ServerCheckOptions;
  logger?: FollowerLogger;
  /**
   * A full comparison of HAProxy with the registry runs this often, besides on every registry
   * event: it re-adds servers a HAProxy restart or reload lost and retries removals of servers
   * that still had connections. @defaultValue 1000
   */
  resyncMs?: number;
  /** Passed to the registry watcher. @defaultValue 1000 */
  reconcileMs?: number;
}

/** A backend server the follower keeps: a stratum server's, or an api instance's. */
interface FollowedServer extends HaproxyServer {
  /** Port of an HTTP health check other than the server's own (an api instance's /healthz). */
  checkPort?: number;
  checkAddress?: string;
}

/** What differs between the kinds of backend the follower keeps. */
interface BackendKind {
  kind: ServiceKind;
  /** The server of a registered service; null when it published no address for this backend. */
  serverOf(service: ServiceInfo): FollowedServer | null;
  /** Words every server of the backend gets (`add server` does not inherit `default-server`). */
  keywords: string;
  /** Words of one server on top of `keywords`. */
  ownKeywords(server: FollowedServer): string;
}

/** What the follower has done, counted since it started. */
export interface FollowerStats {
  /** Completed comparisons of HAProxy with the registry. */
  syncs: number;
  /** `add server` (new stratum servers, and ones a HAProxy restart lost). */
  added: number;
  /** Servers moved to another address or agent port (a restart on another port). */
  moved: number;
  /** Servers set back to ready (from maintenance or a previous instance's drain). */
  readied: number;
  /** Servers set to drain because the registry says draining. */
  drained: number;
  /** Servers put in maintenance because they left the registry. */
  maintained: number;
  /** `del server` done. */
  removed: number;
  /** Removals put off because the server still had connections. */
  removalsDeferred: number;
  /** Failed commands or passes (HAProxy or Redis away); retried on the next pass. */
  errors: number;
  lastError: string | null;
}

export interface StratumFollower {
  /** Resolves after the first complete pass (registry read, HAProxy made to match). */
  readonly synced: Promise<void>;
  readonly stats: Readonly<FollowerStats>;
  /** Runs a pass now (and resolves when it is done). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

interface Wanted {
  server: FollowedServer;
  draining: boolean;
  /** Which process registered it: a new one clears the old one's drain. */
  instance: string;
}

/**
 * Keeps HAProxy's stratum backend equal to the live stratum servers of the registry, through
 * the runtime API and without touching established connections: a new server is added (and
 * enabled once its health and agent checks are on), a draining one is set to drain, one that is
 * gone is put in maintenance and deleted once its last connection has closed. Servers in the
 * backend that the registry does not list are removed the same way; ones that are listed
 * (rendered into the file) are adopted. Nothing is removed before the registry was read once.
 */
export function followStratumServers(options: FollowStratumServersOptions): StratumFollower {
  return followBackend(options, {
    kind: 'stratum',
    serverOf: backendServerOf,
    keywords: serverKeywords(options.check),
    ownKeywords: serverAgentKeywords,
  });
}

export interface FollowApiServersOptions extends Omit<FollowStratumServersOptions, 'chain' | 'check'> {
  /** The check settings the file was rendered with (`api.backend.check`). */
  check?: ApiCheckOptions;
}

/**
 * Keeps HAProxy's api backend equal to the live api instances of the registry, the way
 * `followStratumServers` keeps a stratum backend: an instance is added with an HTTP check on its
 * status server's `/healthz`, a draining one set to drain, a gone one removed once idle.
 */
export function followApiServers(options: FollowApiServersOptions): StratumFollower {
  return followBackend(options, {
    kind: 'api',
    serverOf: (service) => apiServerOf(service, haproxyServerName(service.id)),
    keywords: apiServerKeywords(options.check ?? {}, haproxyTime),
    ownKeywords: apiServerCheckKeywords,
  });
}

function followBackend(
  options: Omit<FollowStratumServersOptions, 'check'>,
  backendKind: BackendKind,
): StratumFollower {
  const { runtime, backend, logger } = options;
  if (!/^[A-Za-z0-9_.:-]+$/.test(backend)) {
    throw new RenderInputError('follower', [
      {
        path: 'backend',
        message: `must be a backend name: letters, digits, '_', '.', ':' or '-' (got ${JSON.stringify(backend)})`,
      },
    ]);
  }
  const { keywords } = backendKind;
  const stats: FollowerStats = {
    syncs: 0,
    added: 0,
    moved: 0,
    readied: 0,
    drained: 0,
    maintained: 0,
    removed: 0,
    removalsDeferred: 0,
    errors: 0,
    lastError: null,
  };
  // The instance each server name was last seen with, to tell a restart from a drain.
  const seenInstance = new Map<string, string>();
  let watcher: ServiceWatcher | null = null;
  let registryRead = false;
  let closed = false;
  let running: Promise<void> | null = null;
  let again = false;
  let markSynced: () => void = () => {};
  let failSynced: (error: Error) => void = () => {};
  const synced = new Promise<void>((resolve, reject) => {
    markSynced = resolve;
    failSynced = reject;
  });
  synced.catch(() => {}); // nobody may be waiting

  const fail = (what: string, error: unknown, fields: object = {}) => {
    stats.errors++;
    stats.lastError = `${what}: ${(error as Error).message}`;
    logger?.warn({ ...fields, backend, err: error }, `haproxy follower: ${what} failed`);
  };

  const startWatcher = () => {
    const w = watchServices({
      redis: options.redis,
      keys: options.keys,
      kind: backendKind.kind,
      ...(options.reconcileMs !== undefined && { reconcileMs: options.reconcileMs }),
    });
    watcher = w;
    w.on('event', () => void schedule());
    w.on('error', (error) => fail('registry read', error));
    w.ready.then(
      () => {
        if (closed || watcher !== w) return;
        registryRead = true;
        void schedule();
      },
      (error) => {
        // Redis away at start: a new watcher on the next pass.
        fail('registry read', error);
        if (watcher === w) watcher = null;
        void w.close();
      },
    );
  };

  const wanted = (): Map<string, Wanted> => {
    const result = new Map<string, Wanted>();
    for (const service of watcher?.services.values() ?? []) {
      if (options.chain !== undefined && service.chain !== options.chain) continue;
      const server = backendKind.serverOf(service);
      if (server)
        result.set(server.name, {
          server,
          draining: service.state === 'draining',
          instance: instanceOf(service),
        });
    }
    return result;
  };

  const act = async (what: keyof FollowerStats | null, name: string, line: string, ok?: RegExp) => {
    await runtime.execute(line, ok);
    if (what && typeof stats[what] === 'number') (stats[what] as number)++;
    logger?.info({ backend, server: name, command: line }, 'haproxy follower: server changed');
  };

  const add = async (name: string, want: Wanted) => {
    const { server } = want;
    const own = backendKind.ownKeywords(server);
    await act(
      'added',
      name,
      `add server ${backend}/${name} ${server.address}:${server.port} ${keywords}${own ? ` ${own}` : ''}`,
      /^New server registered/,
    );
    // A new server starts in maintenance with its checks off.
    await act(null, name, `enable health ${backend}/${name}`);
    if (server.agentPort !== undefined) await act(null, name, `enable agent ${backend}/${name}`);
    await act(null, name, `enable server ${backend}/${name}`);
  };

  const update = async (name: string, want: Wanted, have: ServerState) => {
    const { server } = want;
    const newInstance = seenInstance.get(name) !== want.instance;
    if (have.address !== server.address || have.port !== server.port) {
      await act(
        'moved',
        name,
        `set server ${backend}/${name} addr ${server.address} port ${server.port}`,
        /changed/,
      );
    }
    if (server.agentPort !== undefined && have.agentPort !== server.agentPort) {
      await act('moved', name, `set server ${backend}/${name} agent-port ${server.agentPort}`);
    }
    if (server.checkPort !== undefined && have.checkPort !== server.checkPort) {
      await act('moved', name, `set server ${backend}/${name} check-port ${server.checkPort}`);
    }
    if ((server.agentAddress ?? '') !== have.agentAddress && server.agentAddress) {
      await act('moved', name, `set server ${backend}/${name} agent-addr ${server.agentAddress}`);
    }
    if (want.draining) {
      if (!have.drain || have.maint) await act('drained', name, `set server ${backend}/${name} state drain`);
    } else if (have.maint || (have.drain && newInstance)) {
      // Back from maintenance, or a drain left by the previous process of this id. A drain the
      // running instance's agent asked for stays (the registry may lag behind it by a moment).
      await act('readied', name, `set server ${backend}/${name} state ready`);
    }
  };

  const remove = async (have: ServerState, sessions: number) => {
    const name = have.name;
    if (!have.maint) await act('maintained', name, `set server ${backend}/${name} state maint`);
    if (sessions > 0) {
      stats.removalsDeferred++;
      return;
    }
    try {
      await act('removed', name, `del server ${backend}/${name}`, /^Server deleted/);
    } catch (error) {
      // A connection opened between the count and the delete: next pass.
      if (/still has connections/.test((error as Error).message)) stats.removalsDeferred++;
      else throw error;
    }
  };

  const pass = async () => {
    if (!watcher) startWatcher();
    if (!registryRead) return;
    const want = wanted();
    const have = await runtime.serversState(backend);
    const gone = have.filter((s) => !want.has(s.name));
    const sessions = new Map<string, number>();
    if (gone.length > 0) {
      for (const row of await runtime.serverStats(backend)) sessions.set(row.name, row.sessions);
    }
    const haveByName = new Map(have.map((s) => [s.name, s]));
    let failed = false;
    const attempt = async (name: string, step: () => Promise<void>): Promise<boolean> => {
      try {
        await step();
        return true;
      } catch (error) {
        failed = true;
        fail('runtime command', error, { server: name });
        return false;
      }
    };
    for (const [name, w] of want) {
      const current = haveByName.get(name);
      // A draining server HAProxy does not know (lost on a reload) gets no miners anyway.
      if (!current && w.draining) continue;
      if (await attempt(name, () => (current ? update(name, w, current) : add(name, w)))) {
        seenInstance.set(name, w.instance);
      }
    }
    for (const server of gone) {
      if (await attempt(server.name, () => remove(server, sessions.get(server.name) ?? 0))) {
        seenInstance.delete(server.name);
      }
    }
    stats.syncs++;
    if (!failed) markSynced();
  };

  const schedule = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await pass();
        } catch (error) {
          fail('sync', error);
        }
      } while (again && !closed);
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const timer = setInterval(() => void schedule(), options.resyncMs ?? 1000);
  timer.unref();
  void schedule();

  return {
    synced,
    stats,
    sync: schedule,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      failSynced(new Error('haproxy follower closed before its first sync'));
      await running;
      await watcher?.close();
    },
  };
}

function instanceOf(service: ServiceInfo): string {
  return `${service.pid}:${service.startedAt}`;
}
