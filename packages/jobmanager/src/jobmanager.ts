import { DaemonPool } from '@hashwire/chain';
import { createLogger, createMetrics, isWildcardHost, startStatusServer } from '@hashwire/core';
import {
  BLOCK_SUBMIT_TIMEOUT_MS,
  type Job,
  RpcErrorCode,
  type RpcMethods,
  type RpcPushes,
} from '@hashwire/protocol';
import {
  type Leadership,
  type RedisClient,
  type ServiceRegistration,
  checkServiceIdFree,
  createRateMeter,
  leaseLeadership,
  listServices,
  registerService,
} from '@hashwire/registry';
import {
  RpcError,
  type RpcServer,
  type ServiceCurve,
  clientCurveFor,
  createRpcClient,
  createRpcServer,
  serverCurveOf,
} from '@hashwire/rpc';
import { BlockLog } from './block-log.js';
import { type BlockSignals, listenForBlocks } from './block-signals.js';
import { createBlockSubmitter } from './block-submit.js';
import { followDaemons } from './daemon-log.js';
import { firstAlive } from './handover.js';
import { startHealthReports } from './health.js';
import { JobStore } from './job-store.js';
import { type JobManagerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { createPublisher } from './publishing.js';
import { TemplateSource } from './template-source.js';

/** How long `jm.subscribe` waits for the group's latest job in Redis before answering without one. */
const SUBSCRIBE_REDIS_WAIT_MS = 1000;

export interface JobManagerStats {
  id: string;
  chain: string;
  version: string;
  leader: boolean;
  epoch: number | null;
  height: number | null;
  jobsPublished: number;
  lastJobId: string | null;
  subscribers: number;
  blocksSubmitted: number;
  blocksAccepted: number;
  daemons: { daemon: string; up: boolean; lastError?: string }[];
  /** A daemon answers and gave a template within `templateGraceMs`; `unhealthyReason` says why not. */
  healthy: boolean;
  unhealthyReason: string | null;
  /** ms since a daemon last gave a template. */
  templateAgeMs: number;
  /** Block records not yet written to Redis (Redis away), and records dropped from a full queue. */
  blockRecords: { pending: number; dropped: number };
  /** Block hashes heard on the blocknotify channel, and messages there that were not one; null when off. */
  blocknotify: { channel: string; received: number; ignored: number } | null;
}

export interface JobManager {
  readonly id: string;
  readonly chain: string;
  /** `tcp://host:port` of its RPC server (also in its registry hash). */
  readonly endpoint: string;
  readonly leadership: Leadership;
  /** The Redis channel it hears `-blocknotify` on (`blocknotifyCommand` makes the daemon's command); null when off. */
  readonly blocknotifyChannel: string | null;
  /** The last job this process published (or null while a standby). */
  currentJob(): Job | null;
  stats(): JobManagerStats;
  /** Planned step-down: hand the lease to a standby of the group (if any), then close. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

type JmMethods = Pick<RpcMethods, 'jm.subscribe' | 'jm.submitBlock' | 'svc.status' | 'svc.drain'>;
type JmPushes = Pick<RpcPushes, 'job' | 'health'>;

/**
 * A jobmanager of one chain's group. Every member polls the daemons and holds a ready
 * template; only the lease holder publishes. Stratum servers subscribe to every member
 * (`jm.subscribe`) and keep the jobs with the highest epoch, so a new leader's first job
 * reaches them at once. Any member can submit a block for any job of the group: the job and
 * its template are in Redis.
 */
export async function createJobManager(input: JobManagerOptions): Promise<JobManager> {
  const options: ResolvedOptions = resolveOptions(input);
  const { id, chain, redis, keys, params } = options;
  const store = new JobStore(redis, keys, chain, options.jobTtlMs);
  const metrics = createMetrics({
    service: 'jobmanager',
    id,
    chain,
    version: options.version,
    hashesPerDiff: 2 ** 32 / params.shareDiffMultiplier,
    ...(options.statsd ? { statsd: options.statsd } : {}),
  });
  const logger = input.logger ?? createLogger({ name: 'jobmanager', level: 'silent' });
  const log = logger.child({ id, chain });
  // Before anything else: a second process under a live jobmanager's id would take its lease as
  // its own (one epoch, two leaders).
  await checkServiceIdFree(redis, keys, 'jobmanager', id);
  const daemons = new DaemonPool(options.daemons);
  followDaemons(daemons, log);
  const source = new TemplateSource({
    daemons,
    pollIntervalMs: options.pollIntervalMs,
    refreshIntervalMs: options.refreshIntervalMs,
    longpoll: options.longpoll,
    templateGraceMs: options.templateGraceMs,
  });
  const blockLog = new BlockLog(store, {
    onError: (error, record) => {
      metrics.redisError();
      log.warn(
        { hash: record.hash, state: record.state, err: error.message },
        'jobmanager: block record not written yet, retrying',
      );
    },
    onDropped: (record) =>
      log.error(
        { hash: record.hash, state: record.state },
        'jobmanager: block record dropped, the queue for Redis is full',
      ),
  });
  const blocks = createBlockSubmitter({
    id,
    chain,
    params,
    daemons,
    store,
    metrics,
    log,
    blockLog,
    // The daemon has a new tip: get the next template now rather than at the next poll.
    onAccepted: () => source.notify('submitted'),
  });
  const jobRate = createRateMeter(() => publisher.jobsPublished);
  const blocknotifyChannel = options.blocknotify ? keys.blocknotifyChannel(chain) : null;

  try {
    await source.start();
  } catch (error) {
    daemons.close();
    const urls = daemons.health().map((d) => d.url);
    throw new Error(`no daemon answered getblocktemplate (${urls.join(', ')}): ${(error as Error).message}`);
  }

  const leadership = leaseLeadership({
    redis,
    keys,
    group: `jm:${chain}`,
    holder: id,
    ttlMs: options.leaseTtlMs,
  });
  const publisher = createPublisher({
    options,
    store,
    leadership,
    blocks,
    metrics,
    push: (job) => rpc.push(chain, 'job', job),
  });
  let signals: BlockSignals | null = null;
  let closed = false;

  const stats = (): JobManagerStats => {
    const health = daemons.health();
    const template = source.template;
    const now = Date.now();
    const fresh = source.health(now);
    return {
      id,
      chain,
      version: options.version,
      leader: leadership.isLeader(),
      epoch: leadership.epoch,
      height: template?.height ?? null,
      jobsPublished: publisher.jobsPublished,
      lastJobId: publisher.lastJob?.jobId ?? null,
      subscribers: rpc.stats().subscribers,
      blocksSubmitted: blocks.stats().blocksSubmitted,
      blocksAccepted: blocks.stats().blocksAccepted,
      daemons: health.map((d) => ({
        daemon: d.daemon,
        up: d.up,
        ...(d.lastError ? { lastError: d.lastError } : {}),
      })),
      healthy: fresh.healthy,
      unhealthyReason: fresh.reason,
      templateAgeMs: now - fresh.lastTemplateAt,
      blockRecords: blockLog.stats(),
      blocknotify:
        blocknotifyChannel && signals ? { channel: blocknotifyChannel, ...signals.blocknotify } : null,
    };
  };

  let draining: Promise<void> | null = null;
  const rpc: RpcServer<JmMethods, JmPushes> = await createRpcServer<JmMethods, JmPushes>({
    portRange: options.rpcPortRange,
    host: options.host,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    ...(options.curve ? { curve: serverCurveOf(options.curve) } : {}),
    handlers: {
      'jm.subscribe': async (req, ctx) => {
        if (req.chain !== chain) {
          throw new RpcError(RpcErrorCode.BadRequest, `this jobmanager serves ${chain}, not ${req.chain}`);
        }
        ctx.subscribe(chain);
        const lastJob = publisher.lastJob;
        if (lastJob) return { job: lastJob, earlier: [...publisher.earlierJobs] };
        // A standby has no job of its own: the group's latest, unless Redis is away (frozen);
        // then none, and the leader's next job comes as a push on this subscription.
        let timer: NodeJS.Timeout | undefined;
        const job = await Promise.race([
          store.latest().catch(() => null),
          new Promise<null>((resolve) => {
            timer = setTimeout(() => resolve(null), SUBSCRIBE_REDIS_WAIT_MS);
          }),
        ]);
        clearTimeout(timer);
        return { job };
      },
      'jm.submitBlock': async (req) => {
        const started = performance.now();
        try {
          return await blocks.submit(req);
        } finally {
          metrics.rpc('jm.submitBlock', (performance.now() - started) / 1000);
        }
      },
      'svc.status': () => stats() as unknown as Record<string, unknown>,
      'svc.drain': () => {
        void manager.drain();
        return { draining: true };
      },
    },
  });

  source.on('update', ({ template, newBlock, reason }) => {
    const fields = {
      height: template.height,
      prevhash: template.previousblockhash,
      transactions: template.transactions.length,
      reason,
      leader: leadership.isLeader(),
    };
    // A new block at info on every member; the leader's periodic refreshes (new transactions) at debug.
    if (newBlock) log.info(fields, 'jobmanager: new block template');
    else log.debug(fields, 'jobmanager: template refreshed');
    void publisher.publish(template, newBlock);
  });
  const health = startHealthReports({
    id,
    chain,
    source,
    metrics,
    log,
    intervalMs: Math.min(options.pollIntervalMs, 1000),
    push: (report) => rpc.push(chain, 'health', report),
  });
  metrics.leader(false, 0);
  metrics.draining(false);
  leadership.on('elected', (epoch: number) => {
    metrics.leader(true, epoch);
    log.info({ group: `jm:${chain}`, epoch }, 'jobmanager: leader: this process publishes the jobs');
  });
  leadership.on('deposed', (epoch: number, reason: string) => {
    metrics.leader(false, 0);
    // Given up on purpose (drain, stop) at info; taken away (Redis away, a stall) at warn.
    const planned = reason === 'released' || reason === 'handed-over';
    log[planned ? 'info' : 'warn'](
      { group: `jm:${chain}`, epoch, reason },
      `jobmanager: no longer leader (${reason})`,
    );
  });
  // Only the leader holds a long poll and refreshes for new transactions; standbys stay quiet.
  leadership.on('elected', () => source.setActive(true));
  leadership.on('deposed', () => source.setActive(false));
  leadership.on('elected', () => {
    const template = source.template;
    if (template) void publisher.publishAsNewLeader(template);
  });
  await leadership.start();

  signals = await listenForBlocks({
    redis,
    blocknotifyChannel,
    zmqHashblock: options.zmqHashblock,
    onBlock: (reason) => source.notify(reason),
  });

  const http = await startStatusServer({
    portRange: options.httpPortRange,
    host: options.httpHost,
    advertiseHost: isWildcardHost(options.host) ? '127.0.0.1' : options.host,
    metrics,
    stats,
    ...(input.onDrain ? { onDrain: input.onDrain } : {}),
    ...(input.adminToken ? { adminToken: input.adminToken } : {}),
    health: () => health.status(),
  });

  const registration: ServiceRegistration = await registerService({
    redis,
    keys,
    kind: 'jobmanager',
    id,
    rpc: rpc.endpoint,
    http: http.url,
    ...(options.curve ? { curveKey: options.curve.publicKey } : {}),
    chain,
    version: options.version,
    ttlMs: options.serviceTtlMs,
    measureLoad: () => ({ subscribers: rpc.stats().subscribers, jobsPerMin: 60 * jobRate() }),
    onError: (error) => {
      metrics.redisError();
      log.warn({ err: error.message }, 'jobmanager: registry refresh failed');
    },
  });

  const manager: JobManager = {
    id,
    chain,
    endpoint: rpc.endpoint,
    leadership,
    blocknotifyChannel,
    currentJob: () => publisher.lastJob,
    stats,
    drain() {
      draining ??= (async () => {
        metrics.draining(true);
        await registration.update({ state: 'draining' });
        if (leadership.isLeader()) {
          const standbys = (await listServices(redis, keys, 'jobmanager')).filter(
            (s) => s.chain === chain && s.id !== id && s.state === 'up',
          );
          // A SIGKILLed standby stays registered until its TTL runs out: hand over only to
          // one that answers right now, or the lease would sit with a dead process.
          const successor = await firstAlive(
            standbys.map((s) => ({
              id: s.id,
              rpc: s.rpc,
              ...(s.curveKey ? { curveKey: s.curveKey } : {}),
            })),
            options.curve,
          );
          if (successor) await leadership.handover(successor).catch(() => {});
        }
        await manager.close();
      })();
      return draining;
    },
    async close() {
      if (closed) return;
      closed = true;
      health.stop();
      source.close();
      await publisher.close();
      await leadership.close().catch(() => {});
      // Blocks already handed to us are submitted and answered before we leave the registry
      // (stratum servers drop their client to a jobmanager that left, and the answer with it).
      await rpc.idle(BLOCK_SUBMIT_TIMEOUT_MS);
      // Their records too, while Redis answers; what Redis does not take in time is logged.
      if (!(await blockLog.flush(BLOCK_SUBMIT_TIMEOUT_MS))) {
        log.error(blockLog.stats(), 'jobmanager: block records not written to Redis before exit');
      }
      blockLog.close();
      await registration.close().catch(() => {});
      signals?.close();
      await rpc.close();
      await http.close();
      await metrics.close();
      daemons.close();
    },
  };
  return manager;
}
