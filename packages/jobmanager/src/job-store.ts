import type { BlockTemplate, CoinbasePayout, SoloFee } from '@hashwire/chain';
import type { Job, KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, defineLuaScripts } from '@hashwire/registry';

type Pipeline = ReturnType<RedisClient['pipeline']>;

/** What any jobmanager of the group needs to turn a share on this job into a block. */
export interface StoredJob {
  job: Job;
  template: BlockTemplate;
  payouts: CoinbasePayout[];
  poolTag: string;
  extranonce1Size: number;
  extranonce2Size: number;
  /** A SOLO job: the fee its coinbases take (a block on it pays the finder's `payoutAddress`). */
  solo?: SoloFee;
}

/** `stale`: valid, but its parent was no longer the tip when it was submitted (see `PoolSubmitResult`). */
export type BlockState = 'submitted' | 'accepted' | 'rejected' | 'stale' | 'confirmed' | 'orphaned';

export interface BlockRecord {
  hash: string;
  chain: string;
  height: number;
  jobId: string;
  jmId: string;
  shareId: string;
  /** The finder (the share's account and worker name, '' for none), when the stratum server sent them. */
  account?: string;
  worker?: string;
  /** A SOLO block: the address its coinbase pays (the finder's); absent when it pays the pool's `payouts`. */
  payoutAddress?: string;
  state: BlockState;
  reason?: string;
  submittedAt: number;
  updatedAt: number;
}

/** The jobmanager's Lua scripts in `lua/`, with their key counts. */
const runScript = defineLuaScripts(
  new URL('../lua/', import.meta.url),
  { 'record-block': 3 },
  'hw_jobmanager',
);

/** Bound on the events stream: enough for watchers to catch up after a pause. */
const EVENTS_MAX_LEN = 100_000;

export class JobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly chain: string,
    private readonly ttlMs: number,
  ) {}

  private readonly startedAt = Date.now();
  private sequenceChecked = false;

  /** Stores the job and (once per template) its template, marks it the group's latest, emits `job.new`. */
  async save(stored: StoredJob, templateId: string): Promise<void> {
    const { job } = stored;
    const tplKey = this.keys.template(this.chain, templateId);
    const jobKey = this.keys.job(this.chain, job.jobId);
    const pipeline = this.redis.pipeline();
    pipeline.set(tplKey, JSON.stringify(stored.template), 'PX', this.ttlMs, 'NX');
    pipeline.pexpire(tplKey, this.ttlMs);
    pipeline.hset(jobKey, {
      job: JSON.stringify(job),
      templateId,
      payouts: JSON.stringify(stored.payouts),
      poolTag: stored.poolTag,
      extranonce1Size: stored.extranonce1Size,
      extranonce2Size: stored.extranonce2Size,
      ...(stored.solo && { solo: JSON.stringify(stored.solo) }),
    });
    pipeline.pexpire(jobKey, this.ttlMs);
    pipeline.set(this.keys.latestJob(this.chain), JSON.stringify(job), 'PX', this.ttlMs);
    this.queueEvent(pipeline, 'job.new', {
      chain: job.chain,
      jobId: job.jobId,
      height: job.height,
      epoch: job.epoch,
      jmId: job.jmId,
      cleanJobs: job.cleanJobs,
    });
    // Every key is in the chain's hash slot: one pipeline, one node, on Redis Cluster too.
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
  }

  async load(jobId: string): Promise<StoredJob | null> {
    let hash = await this.redis.hgetall(this.keys.job(this.chain, jobId));
    let templateKey = (id: string) => this.keys.template(this.chain, id);
    if (!hash.job && !this.migrated) {
      // A job an earlier release's leader published (keys without the chain's hash tag): read
      // during an upgrade, so a block found on it is not lost. Single key reads: any topology.
      hash = await this.redis.hgetall(this.keys.legacy.job(this.chain, jobId));
      templateKey = (id) => this.keys.legacy.template(this.chain, id);
    }
    if (!hash.job || !hash.templateId) return null;
    const template = await this.redis.get(templateKey(hash.templateId));
    if (!template) return null;
    return {
      job: JSON.parse(hash.job) as Job,
      template: JSON.parse(template) as BlockTemplate,
      payouts: JSON.parse(hash.payouts ?? '[]') as CoinbasePayout[],
      poolTag: hash.poolTag ?? '',
      extranonce1Size: Number(hash.extranonce1Size),
      extranonce2Size: Number(hash.extranonce2Size),
      ...(hash.solo && { solo: JSON.parse(hash.solo) as SoloFee }),
    };
  }

  /** The latest job any leader of the group published, if still fresh. */
  async latest(): Promise<Job | null> {
    const text = await this.redis.get(this.keys.latestJob(this.chain));
    return text ? (JSON.parse(text) as Job) : null;
  }

  /** A globally unique, short job id (miners echo it back in every share). */
  async nextJobId(): Promise<string> {
    if (!this.sequenceChecked) await this.continueLegacySequence();
    return (await this.redis.incr(this.keys.jobSequence(this.chain))).toString(16);
  }

  /**
   * Legacy (untagged) job keys are looked at until this store's jobs have outlived them: one
   * job TTL after it started, no job an earlier release published can still be valid.
   */
  private get migrated(): boolean {
    return Date.now() - this.startedAt > this.ttlMs;
  }

  /**
   * On the first job after an upgrade from untagged keys, the new sequence starts where the old
   * one stopped (SET NX: whichever jobmanager comes first sets it), so job ids are never reused
   * while miners, stratum caches and the reporters' duplicate check still hold the old ones.
   */
  private async continueLegacySequence(): Promise<void> {
    const current = this.keys.jobSequence(this.chain);
    if ((await this.redis.exists(current)) === 0) {
      const old = await this.redis.get(this.keys.legacy.jobSequence(this.chain));
      if (old !== null && /^\d+$/.test(old)) await this.redis.set(current, old, 'NX');
    }
    this.sequenceChecked = true;
  }

  /**
   * The record, its index entry and its `block.<state>` event, in one step (one slot), when the
   * record takes that state (`lua/record-block.lua`): each state once, never back. False when
   * nothing changed (the same state again, or a record already further along).
   */
  async recordBlock(record: BlockRecord): Promise<boolean> {
    const written = await runScript(
      this.redis,
      'record-block',
      [this.keys.blocks(this.chain), this.keys.blocksIndex(this.chain), this.keys.events(this.chain)],
      [record.hash, JSON.stringify(record), record.state, record.height, EVENTS_MAX_LEN, Date.now()],
    );
    return written === 1;
  }

  async getBlock(hash: string): Promise<BlockRecord | null> {
    const text = await this.redis.hget(this.keys.blocks(this.chain), hash);
    return text ? (JSON.parse(text) as BlockRecord) : null;
  }

  async event(type: string, data: unknown): Promise<void> {
    const pipeline = this.redis.pipeline();
    this.queueEvent(pipeline, type, data);
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
  }

  /** Adds the event to the chain's stream (`events:{chain}`) as part of `pipeline`. */
  private queueEvent(pipeline: Pipeline, type: string, data: unknown): void {
    pipeline.xadd(
      this.keys.events(this.chain),
      'MAXLEN',
      '~',
      EVENTS_MAX_LEN,
      '*',
      'type',
      type,
      'ts',
      String(Date.now()),
      'data',
      JSON.stringify(data),
    );
  }
}
