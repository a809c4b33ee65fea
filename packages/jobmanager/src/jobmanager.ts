import { createHash } from 'node:crypto';
import { type BlockTemplate, DaemonPool, HashblockListener, buildJob } from '@hashwire/chain';
import { createLogger, createMetrics, isWildcardHost, startStatusServer } from '@hashwire/core';
import {
  BLOCK_SUBMIT_TIMEOUT_MS,
  type Job,
  type JobmanagerHealth,
  RpcErrorCode,
  type RpcMethods,
  type RpcPushes,
} from '@hashwire/protocol';
import {
  type Leadership,
  type RedisClient,
  type ServiceRegistration,
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
import { createBlockSubmitter } from './block-submit.js';
import { followDaemons } from './daemon-log.js';
import { JobStore, type StoredJob } from './job-store.js';
import { type JobManagerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { TemplateSource } from './template-source.js';

const BLOCK_HASH = /^[0-9a-f]{64}$/;
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

function templateId(template: BlockTemplate): string {
  const h = createHash('sha256');
  h.update(template.previousblockhash);
  h.update(String(template.curtime));
  h.update(template.longpollid ?? '');
  for (const tx of template.transactions) h.update(tx.hash ?? tx.txid);
  h.update(template.mweb ?? '');
  return h.digest('hex').slice(0, 24);
}

/** The id of the first jobmanager (in the given order) that answers `svc.status` as itself within 300 ms. */
async function firstAlive(
  candidates: { id: string; rpc: string; curveKey?: string }[],
  curve: ServiceCurve | undefined,
): Promise<string | null> {
  for (const candidate of candidates) {
    let clientCurve: ReturnType<typeof clientCurveFor>;
    try {
      clientCurve = clientCurveFor(curve, candidate.curveKey, `jobmanager ${candidate.id}`);
    } catch {
      continue; // CURVE on one side only: it could not answer us anyway
    }
    const client = createRpcClient<JmMethods>(candidate.rpc, {
      timeoutMs: 300,
      ...(clientCurve ? { curve: clientCurve } : {}),
    });
    try {
      // Its port may have been taken over by another process since it registered.
      const status = (await client.request('svc.status', {})) as { id?: string };
      if (status.id === candidate.id) return candidate.id;
    } catch {
      // silent: dead or stalled, try the next
    } finally {
      await client.close();
    }
  }
  return null;
}

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
  const templateIds = new WeakMap<BlockTemplate, string>();
  const jobRate = createRateMeter(() => jobsPublished);
  let lastJob: Job | null = null;
  let jobsPublished = 0;
  let closed = false;
  let publishing: Promise<void> = Promise.resolve();
  let blocknotify: RedisClient | null = null;
  const blocknotifyCounts = { received: 0, ignored: 0 };
  const blocknotifyChannel = options.blocknotify ? keys.blocknotifyChannel(chain) : null;
  const hashblock: HashblockListener[] = [];

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

  const publish = (template: BlockTemplate, cleanJobs: boolean): Promise<void> => {
    const requestedAt = performance.now();
    publishing = publishing.then(async () => {
      if (closed || !leadership.isLeader()) return;
      const epoch = leadership.epoch as number;
      const jobId = await store.nextJobId();
      const built = buildJob({
        template,
        params,
        chain,
        payouts: options.payouts,
        poolTag: options.poolTag,
        extranonce1Size: options.extranonce1Size,
        extranonce2Size: options.extranonce2Size,
        epoch,
        jobId,
        jmId: id,
        cleanJobs,
      });
      const stored: StoredJob = {
        job: built.job,
        template,
        payouts: options.payouts,
        poolTag: options.poolTag,
        extranonce1Size: options.extranonce1Size,
        extranonce2Size: options.extranonce2Size,
      };
      let tplId = templateIds.get(template);
      if (!tplId) {
        tplId = templateId(template);
        templateIds.set(template, tplId);
      }
      // In Redis before any stratum server can see it: a block on it can be submitted by anyone.
      await store.save(stored, tplId);
      blocks.remember(stored);
      // Fencing: a lease lost while we stored the job means this job must not go out.
      if (!leadership.isLeader() || leadership.epoch !== epoch) return;
      lastJob = built.job;
      jobsPublished++;
      rpc.push(chain, 'job', built.job);
      metrics.jobPush((performance.now() - requestedAt) / 1000);
    });
    publishing = publishing.catch(() => {});
    return publishing;
  };

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
      jobsPublished,
      lastJobId: lastJob?.jobId ?? null,
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
      blocknotify: blocknotifyChannel ? { channel: blocknotifyChannel, ...blocknotifyCounts } : null,
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
        if (lastJob) return { job: lastJob };
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
    void publish(template, newBlock);
  });
  // Daemon health goes to every subscriber (leader or not): stratum servers decide from the
  // whole group whether miners still have real work (see JobFeed `unhealthy`).
  let lastHealthy: boolean | null = null;
  let healthBeats = 0;
  const pushHealth = () => {
    const now = Date.now();
    const health = source.health(now);
    const templateAgeMs = now - health.lastTemplateAt;
    metrics.templateHealth(health.healthy, templateAgeMs / 1000);
    healthBeats++;
    const changed = health.healthy !== lastHealthy;
    if (changed && !health.healthy) {
      log.error({ reason: health.reason, templateAgeMs }, `jobmanager: unhealthy: ${health.reason}`);
    } else if (changed && lastHealthy !== null) {
      log.info({ templateAgeMs }, 'jobmanager: healthy again: a daemon gives templates');
    }
    if (!changed && healthBeats % 4 !== 0) return;
    lastHealthy = health.healthy;
    const push: JobmanagerHealth = {
      jmId: id,
      chain,
      healthy: health.healthy,
      lastOkAt: health.lastOkAt,
      lastError: health.healthy ? health.lastError : (health.reason ?? health.lastError),
      lastTemplateAt: health.lastTemplateAt,
      templateAgeMs,
    };
    rpc.push(chain, 'health', push);
  };
  const healthTimer = setInterval(pushHealth, Math.min(options.pollIntervalMs, 1000));
  healthTimer.unref();
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
    if (!template) return;
    // A new leader sends clean_jobs only if the block changed since the group's last job.
    void store.latest().then(
      (latest) => publish(template, !latest || latest.height !== template.height),
      () => publish(template, true),
    );
  });
  await leadership.start();

  if (blocknotifyChannel) {
    // Its own connection: a subscribed one can send nothing else. ioredis subscribes again
    // after a reconnect.
    blocknotify = redis.duplicate();
    // Redis trouble shows on the main connection (registry, lease); this one only reconnects.
    blocknotify.on('error', () => {});
    blocknotify.on('message', (channel: string, message: string) => {
      if (channel !== blocknotifyChannel) return;
      if (!BLOCK_HASH.test(message.trim())) {
        blocknotifyCounts.ignored++;
        return;
      }
      blocknotifyCounts.received++;
      source.notify('blocknotify');
    });
    await blocknotify.subscribe(blocknotifyChannel);
  }
  for (const endpoint of options.zmqHashblock) {
    const listener = new HashblockListener({ endpoint });
    listener.on('block', () => source.notify('hashblock'));
    hashblock.push(listener);
  }

  const http = await startStatusServer({
    portRange: options.httpPortRange,
    host: options.httpHost,
    advertiseHost: isWildcardHost(options.host) ? '127.0.0.1' : options.host,
    metrics,
    stats,
    ...(input.onDrain ? { onDrain: input.onDrain } : {}),
    ...(input.adminToken ? { adminToken: input.adminToken } : {}),
    health: () => {
      const health = source.health();
      return health.healthy ? { ok: true } : { ok: false, reasons: [health.reason as string] };
    },
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
    currentJob: () => lastJob,
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
      clearInterval(healthTimer);
      source.close();
      await publishing;
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
      for (const l of hashblock) l.close();
      blocknotify?.disconnect();
      await rpc.close();
      await http.close();
      await metrics.close();
      daemons.close();
    },
  };
  return manager;
}
