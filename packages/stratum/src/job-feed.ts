import { EventEmitter } from 'node:events';
import {
  BLOCK_SUBMIT_TIMEOUT_MS,
  type Job,
  type JobmanagerHealth,
  type KeyBuilder,
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
import { BlockSubmitter, type BlockTarget } from './block-submit.js';
import { type WorkVerdict, judgeWork } from './work-health.js';

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
  /**
   * The oldest work miners are kept on: once the newest job (its `createdAt`) is older than
   * this, whatever the jobmanagers report, the feed reports `unhealthy` (their daemons answer
   * but give no fresh template: not connected to peers, initial block download, warming up, or
   * every jobmanager gone). A leader sends a job at least every `refreshIntervalMs` (30 s), so
   * keep this above it with room for a missed refresh. Clocks of the hosts must agree (NTP).
   * @defaultValue 90000
   */
  maxJobAgeMs?: number;
  /**
   * A jobmanager we subscribed to that sends nothing (no job, no `health` push, which comes at
   * least every 4 s) for this long counts as silent: its health as unknown, and block candidates
   * go to it last and do not take its errors as a verdict (a dead process's port may be reused
   * by another). A restart shows in the registry (new pid, start time or endpoint) and is
   * subscribed to again at once.
   * @defaultValue 10000
   */
  silenceMs?: number;
  /** While block candidates wait for a jobmanager, how often they are tried again. @defaultValue 1000 */
  blockRetryMs?: number;
}

type JmClient = RpcClient<RpcMethods, RpcPushes>;
type SubmitRequest = RpcMethods['jm.submitBlock']['req'];
type SubmitReply = RpcMethods['jm.submitBlock']['rep'];

/** One jobmanager we subscribe to, as the registry showed it when we connected. */
interface Member {
  client: JmClient;
  endpoint: string;
  pid: number;
  startedAt: number;
  /** The server key it published: a new one means a new process (or a key rotation). */
  curveKey: string | undefined;
  /** When it last sent anything (subscribe reply, job, health); ms. */
  heardAt: number;
}

export interface JobFeedStats {
  jobs: number;
  fenced: number;
  duplicates: number;
  /** `jm.subscribe` sent again to a jobmanager that restarted (a new pid, start time or endpoint in the registry). */
  resubscribes: number;
  submits: number;
  submitFailovers: number;
  /** Block candidates waiting for a jobmanager to answer now, and ever. */
  blocksHeld: number;
  blocksHeldTotal: number;
  /** Candidates given up without an answer (stale: the chain moved on first). */
  blocksUnanswered: number;
  blocksStaleUnanswered: number;
}

/**
 * Jobs for a stratum server from the whole jobmanager group: subscribes to every jobmanager
 * of the chain found in the registry (so whichever leads next reaches us at once), passes on
 * each job once, and drops jobs of an epoch lower than one already seen (a deposed leader).
 * A jobmanager that restarts (new pid, start time or endpoint in the registry) is subscribed
 * to again at once. Reports `unhealthy` when the work miners hold is going stale.
 * Block candidates go to the jobmanager that issued the job, or any other of the group, and
 * are held while none answers (see `BlockSubmitter`).
 */
export class JobFeed extends EventEmitter<{
  job: [Job];
  fenced: [Job];
  /** No fresh work: no jobmanager has had a daemon for `daemonGraceMs`, or the newest job is older than `maxJobAgeMs`. */
  unhealthy: [{ sinceMs: number; reasons: string[] }];
  /** Fresh work again. */
  healthy: [];
  error: [Error];
}> {
  private readonly options: JobFeedOptions;
  private readonly members = new Map<string, Member>();
  private watcher: ServiceWatcher | null = null;
  private latest: Job | null = null;
  private latestReceivedAt = 0;
  private highestEpoch = -1;
  private readonly seen = new Set<string>();
  /** jobId → its issuer and parent (stratum order), for block candidates. */
  private readonly jobInfo = new Map<string, { jmId: string; prevhash: string }>();
  private closed = false;
  private readonly health = new Map<string, JobmanagerHealth>();
  private unhealthySince: number | null = null;
  private reportedUnhealthy = false;
  private lastVerdict: WorkVerdict | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private readonly blocks: BlockSubmitter;
  private readonly counts = { jobs: 0, fenced: 0, duplicates: 0, resubscribes: 0 };

  constructor(options: JobFeedOptions) {
    super();
    this.options = options;
    this.blocks = new BlockSubmitter({
      targets: () => [...this.members.entries()].map(([id, m]) => this.target(id, m)),
      issuerOf: (jobId) => this.jobInfo.get(jobId)?.jmId,
      parentOf: (jobId) => this.jobInfo.get(jobId)?.prevhash,
      submitTimeoutMs: options.submitTimeoutMs ?? BLOCK_SUBMIT_TIMEOUT_MS,
      retryMs: options.blockRetryMs ?? 1000,
    });
  }

  get stats(): JobFeedStats {
    const b = this.blocks.stats;
    return {
      ...this.counts,
      submits: b.submits,
      submitFailovers: b.submitFailovers,
      blocksHeld: b.held,
      blocksHeldTotal: b.heldTotal,
      blocksUnanswered: b.unanswered,
      blocksStaleUnanswered: b.staleUnanswered,
    };
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
    return [...this.members.keys()];
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
    // The watcher's first reconcile may have announced them already ('up' events).
    for (const service of this.watcher.services.values()) {
      if (service.chain === chain && !this.members.has(service.id)) this.connect(service);
    }
    this.healthTimer = setInterval(() => this.tick(), 250);
    this.healthTimer.unref();
  }

  /** False while the work miners hold is going stale (see `unhealthy`), until fresh work comes. */
  isHealthy(): boolean {
    return !this.reportedUnhealthy;
  }

  /** Why the feed is unhealthy (the operator's text), or null. */
  unhealthyReasons(): string[] | null {
    return this.reportedUnhealthy ? (this.lastVerdict?.reasons ?? []) : null;
  }

  private tick(): void {
    if (this.closed) return;
    this.checkHealth(Date.now());
  }

  private checkHealth(now: number): void {
    const silenceMs = this.options.silenceMs ?? 10_000;
    const verdict = judgeWork({
      now,
      members: [...this.members.entries()].map(([id, m]) => ({
        id,
        heard: now - m.heardAt <= silenceMs,
        health: this.health.get(id) ?? null,
      })),
      latest: this.latest && {
        jobId: this.latest.jobId,
        height: this.latest.height,
        createdAt: Math.min(this.latest.createdAt, this.latestReceivedAt),
      },
      maxJobAgeMs: this.options.maxJobAgeMs ?? 90_000,
    });
    this.lastVerdict = verdict;
    if (verdict.groupHealthy) this.unhealthySince = null;
    else this.unhealthySince ??= now;
    const groupLost =
      this.unhealthySince !== null && now - this.unhealthySince >= (this.options.daemonGraceMs ?? 60_000);
    if (!groupLost && !verdict.workStale) {
      if (this.reportedUnhealthy) {
        this.reportedUnhealthy = false;
        this.emit('healthy');
      }
      return;
    }
    if (this.reportedUnhealthy) return;
    this.reportedUnhealthy = true;
    const since = verdict.workStale ? verdict.staleSince : (this.unhealthySince as number);
    this.emit('unhealthy', { sinceMs: now - Math.min(since, now), reasons: verdict.reasons });
  }

  private onService({ type, service }: ServiceEvent): void {
    if (this.closed || service.chain !== this.options.chain) return;
    if (type === 'down') {
      this.disconnect(service.id);
      return;
    }
    const member = this.members.get(service.id);
    // A restart under the same id shows as a new pid, start time or endpoint: the old
    // subscription died with the old process, even when the new one took the same port.
    const restarted =
      !member ||
      member.endpoint !== service.rpc ||
      member.pid !== service.pid ||
      member.startedAt !== service.startedAt ||
      member.curveKey !== service.curveKey;
    if (restarted) this.connect(service);
  }

  private connect(service: ServiceInfo): void {
    const { id, rpc: endpoint } = service;
    if (!endpoint) return;
    const wasConnected = this.members.has(id);
    this.disconnect(id);
    if (wasConnected) this.counts.resubscribes++;
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
    const member: Member = {
      client,
      endpoint,
      pid: service.pid,
      startedAt: service.startedAt,
      curveKey: service.curveKey,
      heardAt: Date.now(),
    };
    this.members.set(id, member);
    client.onPush('job', (job) => {
      this.heard(member);
      this.deliver(job);
    });
    client.onPush('health', (health) => {
      this.heard(member);
      if (health.chain === this.options.chain) this.health.set(id, health);
    });
    client
      .subscribe('jm.subscribe', { stratumId: this.options.stratumId, chain: this.options.chain }, (reply) =>
        this.onSubscribed(member, reply),
      )
      .catch((error: Error) => {
        // A client closed because its jobmanager went down or restarted is no error of ours.
        if (this.members.get(id) === member) this.report(error);
      });
  }

  private onSubscribed(member: Member, reply: RpcMethods['jm.subscribe']['rep']): void {
    this.heard(member);
    if (!reply.job) return;
    // The jobs before the current one that miners may still work on (a server that just started
    // would call their shares unknown), oldest first, so the current job ends up current. Not
    // when the current job came first (a push): an earlier one must not take its place.
    if (Array.isArray(reply.earlier) && !this.seen.has(`${reply.job.epoch}:${reply.job.jobId}`)) {
      for (const job of reply.earlier) this.deliver(job);
    }
    this.deliver(reply.job);
  }

  private heard(member: Member): void {
    member.heardAt = Date.now();
    // A jobmanager answers: block candidates waiting for one get their turn.
    if (this.blocks.heldCount() > 0) this.blocks.retry();
  }

  private disconnect(id: string): void {
    const member = this.members.get(id);
    if (!member) return;
    this.members.delete(id);
    this.health.delete(id);
    void member.client.close();
  }

  private target(id: string, member: Member): BlockTarget {
    return {
      id,
      heard: Date.now() - member.heardAt <= (this.options.silenceMs ?? 10_000),
      submit: (request, timeoutMs) => member.client.request('jm.submitBlock', request, { timeoutMs }),
    };
  }

  private deliver(job: Job): void {
    if (this.closed || job.chain !== this.options.chain) return;
    const key = `${job.epoch}:${job.jobId}`;
    if (this.seen.has(key)) {
      this.counts.duplicates++;
      return;
    }
    if (job.epoch < this.highestEpoch) {
      this.counts.fenced++;
      this.emit('fenced', job);
      return;
    }
    this.seen.add(key);
    if (this.seen.size > 1024) this.seen.delete(this.seen.values().next().value as string);
    this.jobInfo.set(job.jobId, { jmId: job.jmId, prevhash: job.prevhash });
    if (this.jobInfo.size > 1024) this.jobInfo.delete(this.jobInfo.keys().next().value as string);
    this.highestEpoch = job.epoch;
    this.latest = job;
    this.latestReceivedAt = Date.now();
    this.counts.jobs++;
    this.emit('job', job);
    this.blocks.tipChanged(job.prevhash);
    // Fresh work ends a suspension at once rather than at the next tick.
    if (this.reportedUnhealthy) this.checkHealth(Date.now());
  }

  /**
   * `jm.submitBlock` to the job's issuer first, then to every other jobmanager until one
   * answers, each call within `submitTimeoutMs`. Without any answer the candidate is held and
   * tried again (see `BlockSubmitter`); it fails with `BlockUnansweredError` once the chain
   * moved on or the feed stops holding.
   */
  submitBlock(request: SubmitRequest): Promise<SubmitReply> {
    return this.blocks.submit(request);
  }

  /** Gives up the block candidates waiting for a jobmanager, and holds no more (the server stops). */
  releaseBlocks(reason: string): void {
    this.blocks.release(reason);
  }

  private report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.blocks.release('the job feed closed');
    await this.watcher?.close();
    await Promise.all([...this.members.values()].map((m) => m.client.close()));
    this.members.clear();
  }
}
