import { EventEmitter } from 'node:events';
import {
  BLOCK_SUBMIT_TIMEOUT_MS,
  type Job,
  type JobmanagerHealth,
  type KeyBuilder,
  RpcErrorCode,
  type RpcMethods,
  type RpcPushes,
} from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceEvent,
  type ServiceInfo,
  type ServiceWatcher,
  watchServices,
} from '@hashwire/registry';
import { type RpcClient, RpcError, type ServiceCurve, clientCurveFor, createRpcClient } from '@hashwire/rpc';

export interface JobFeedOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** Chain id the jobs are for (`Job.chain`, the jobmanagers' registered chain). */
  chain: string;
  /** This stratum server's id, sent with `jm.subscribe`. */
  stratumId: string;
  /** Must match the jobmanagers'. @defaultValue 1000 */
  heartbeatIntervalMs?: number;
  /** How often the registry is re-read for jobmanagers that vanished. @defaultValue 1000 */
  reconcileMs?: number;
  /**
   * Deadline of a `jm.submitBlock` call; the jobmanagers wait as long for submits in flight.
   * @defaultValue `BLOCK_SUBMIT_TIMEOUT_MS` (5000)
   */
  submitTimeoutMs?: number;
  /**
   * How long miners keep the last job after every jobmanager lost its daemons (or none is
   * reachable) before the feed reports `unhealthy` and the server sends them away.
   * @defaultValue 60000
   */
  daemonGraceMs?: number;
  /**
   * This stratum server's CURVE key pair, for jobmanagers that publish a `curveKey` (and this
   * feed then refuses one that publishes none).
   */
  curve?: ServiceCurve;
}

type JmClient = RpcClient<RpcMethods, RpcPushes>;
type SubmitRequest = RpcMethods['jm.submitBlock']['req'];
type SubmitReply = RpcMethods['jm.submitBlock']['rep'];

/**
 * Jobs for a stratum server from the whole jobmanager group: subscribes to every jobmanager
 * of the chain found in the registry (so whichever leads next reaches us at once), passes on
 * each job once, and drops jobs of an epoch lower than one already seen (a deposed leader).
 * Block candidates go to the jobmanager that issued the job, or any other of the group.
 */
export class JobFeed extends EventEmitter<{
  job: [Job];
  fenced: [Job];
  /** No jobmanager has had a daemon for `daemonGraceMs`: the work miners hold is going stale. */
  unhealthy: [{ sinceMs: number; reasons: string[] }];
  /** A daemon is back behind some jobmanager. */
  healthy: [];
  error: [Error];
}> {
  private readonly options: JobFeedOptions;
  private readonly clients = new Map<string, JmClient>();
  private watcher: ServiceWatcher | null = null;
  private latest: Job | null = null;
  private highestEpoch = -1;
  private readonly seen = new Set<string>();
  private readonly issuer = new Map<string, string>();
  private closed = false;
  private readonly health = new Map<string, JobmanagerHealth>();
  private unhealthySince: number | null = null;
  private reportedUnhealthy = false;
  private healthTimer: NodeJS.Timeout | null = null;
  readonly stats = { jobs: 0, fenced: 0, duplicates: 0, submits: 0, submitFailovers: 0 };

  constructor(options: JobFeedOptions) {
    super();
    this.options = options;
  }

  /** The newest job of the highest epoch, or null before the first. */
  current(): Job | null {
    return this.latest;
  }

  onJob(callback: (job: Job) => void): () => void {
    this.on('job', callback);
    return () => this.off('job', callback);
  }

  /** Jobmanagers currently connected. */
  connected(): string[] {
    return [...this.clients.keys()];
  }

  async start(): Promise<void> {
    const { redis, keys, chain } = this.options;
    this.watcher = watchServices({
      redis,
      keys,
      kind: 'jobmanager',
      reconcileMs: this.options.reconcileMs ?? 1000,
    });
    this.watcher.on('event', (event) => this.onService(event));
    this.watcher.on('error', (error) => this.report(error));
    await this.watcher.ready;
    for (const service of this.watcher.services.values()) {
      if (service.chain === chain) this.connect(service);
    }
    this.healthTimer = setInterval(() => this.checkHealth(), 250);
    this.healthTimer.unref();
  }

  /** False once the group has been without a daemon for `daemonGraceMs` (and until one is back). */
  isHealthy(): boolean {
    return !this.reportedUnhealthy;
  }

  private checkHealth(): void {
    if (this.closed) return;
    const connected = [...this.clients.keys()];
    const reports = connected.map((id) => this.health.get(id));
    // Unknown health (no report yet) counts as healthy: a jobmanager reports within a second.
    const groupHealthy = connected.length > 0 && reports.some((h) => h === undefined || h.healthy);
    const now = Date.now();
    if (groupHealthy) {
      this.unhealthySince = null;
      if (this.reportedUnhealthy) {
        this.reportedUnhealthy = false;
        this.emit('healthy');
      }
      return;
    }
    this.unhealthySince ??= now;
    if (!this.reportedUnhealthy && now - this.unhealthySince >= (this.options.daemonGraceMs ?? 60_000)) {
      this.reportedUnhealthy = true;
      const reasons =
        connected.length === 0
          ? ['no jobmanager reachable']
          : reports.map((h, i) => `${connected[i]}: ${h?.lastError ?? 'no daemon answers'}`);
      this.emit('unhealthy', { sinceMs: now - this.unhealthySince, reasons });
    }
  }

  private onService({ type, service }: ServiceEvent): void {
    if (this.closed || service.chain !== this.options.chain) return;
    if (type === 'down') this.disconnect(service.id);
    else if (!this.clients.has(service.id) || type === 'up') this.connect(service);
  }

  private connect(service: ServiceInfo): void {
    const { id, rpc: endpoint } = service;
    if (!endpoint) return;
    this.disconnect(id);
    let curve: ReturnType<typeof clientCurveFor>;
    try {
      curve = clientCurveFor(this.options.curve, service.curveKey, `jobmanager ${id}`);
    } catch (error) {
      this.report(error as Error);
      return;
    }
    const client: JmClient = createRpcClient<RpcMethods, RpcPushes>(endpoint, {
      heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 1000,
      ...(curve ? { curve } : {}),
    });
    this.clients.set(id, client);
    client.onPush('job', (job) => this.deliver(job));
    client.onPush('health', (health) => {
      if (health.chain === this.options.chain) this.health.set(id, health);
    });
    client
      .subscribe(
        'jm.subscribe',
        { stratumId: this.options.stratumId, chain: this.options.chain },
        (reply) => {
          if (reply.job) this.deliver(reply.job);
        },
      )
      .catch((error: Error) => this.report(error));
  }

  private disconnect(id: string): void {
    const client = this.clients.get(id);
    if (!client) return;
    this.clients.delete(id);
    this.health.delete(id);
    void client.close();
  }

  private deliver(job: Job): void {
    if (this.closed || job.chain !== this.options.chain) return;
    const key = `${job.epoch}:${job.jobId}`;
    if (this.seen.has(key)) {
      this.stats.duplicates++;
      return;
    }
    if (job.epoch < this.highestEpoch) {
      this.stats.fenced++;
      this.emit('fenced', job);
      return;
    }
    this.seen.add(key);
    if (this.seen.size > 1024) this.seen.delete(this.seen.values().next().value as string);
    this.issuer.set(job.jobId, job.jmId);
    if (this.issuer.size > 1024) this.issuer.delete(this.issuer.keys().next().value as string);
    this.highestEpoch = job.epoch;
    this.latest = job;
    this.stats.jobs++;
    this.emit('job', job);
  }

  /**
   * `jm.submitBlock` to the job's issuer first, then to every other jobmanager until one answers.
   * The candidates are looked up again after each failure: a jobmanager that left mid-call
   * (drained, restarted) fails it, and one that joined meanwhile gets its turn.
   */
  async submitBlock(request: SubmitRequest): Promise<SubmitReply> {
    this.stats.submits++;
    const issuer = this.issuer.get(request.jobId);
    const tried = new Set<JmClient>();
    let lastError: unknown = new RpcError(RpcErrorCode.Unavailable, 'no jobmanager connected');
    for (;;) {
      const untried = [...this.clients.entries()].filter(([, client]) => !tried.has(client));
      const next = (untried.find(([id]) => id === issuer) ?? untried[0])?.[1];
      if (!next) throw lastError;
      if (tried.size > 0) this.stats.submitFailovers++;
      tried.add(next);
      try {
        return await next.request('jm.submitBlock', request, {
          timeoutMs: this.options.submitTimeoutMs ?? BLOCK_SUBMIT_TIMEOUT_MS,
        });
      } catch (error) {
        lastError = error;
      }
    }
  }

  private report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    await this.watcher?.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }
}
