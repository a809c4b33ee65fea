import { DaemonError, type DaemonPool, RpcCode } from '@hashwire/chain';
import type { Logger, Metrics } from '@hashwire/core';
import type { RedisClient } from '@hashwire/registry';
import type { ReporterKeys } from './keys.js';
import { type ReplicaCount, execWithWait } from './replication.js';
import { runScript } from './scripts.js';

/** What the jobmanager writes in `blocks:{chain}`, plus what reporters add. */
export interface BlockRecord {
  hash: string;
  chain: string;
  height: number;
  /**
   * The jobmanager's verdict (`accepted`, `rejected`, `stale`: built on a parent that was no
   * longer the tip, `orphaned`: a sibling won the race), then the reporter's (`confirmed`, or
   * `orphaned` when an accepted block left the main chain).
   */
  state: 'submitted' | 'accepted' | 'rejected' | 'stale' | 'confirmed' | 'orphaned';
  updatedAt: number;
  confirmations?: number;
  /** Set when the block closed a round (by a reporter). */
  round?: {
    key: string;
    accounts: number;
    totalDiff: number;
    closedAt: number;
    shareId: string;
    account: string;
    worker: string;
    /** The block was orphaned and its round's totals were added back to the current round. */
    returned?: boolean;
  };
  [field: string]: unknown;
}

export interface BlockWatcherOptions {
  redis: RedisClient;
  /** Replicas a round close or block state change waits for (the credits' setting). */
  replicas: ReplicaCount;
  keys: ReporterKeys;
  chain: string;
  /** Null: rounds still close on accepted blocks, but nothing is confirmed or orphaned. */
  daemons: DaemonPool | null;
  confirmations: number;
  pollMs: number;
  eventsMaxLen: number;
  /** A candidate whose block record never settles is dropped after this. */
  candidateMaxAgeMs: number;
  /**
   * A record still `submitted` this long after its last update is settled from the daemons: a
   * jobmanager killed between a daemon's verdict and the write of its record leaves it so.
   */
  settleSubmittedMs: number;
  logger: Logger;
  metrics: Metrics;
}

export interface BlockWatcherStats {
  polls: number;
  pollErrors: number;
  roundsClosed: number;
  confirmed: number;
  orphaned: number;
  candidatesDropped: number;
  /** Records left `submitted` that the daemons had in their main chain: moved to `accepted`. */
  settledFromDaemons: number;
}

/**
 * Settles rounds and follows our blocks: every `pollMs` (and at once after a batch with a block
 * candidate) it closes the round of each candidate whose record reached `accepted`, then asks the
 * daemons about every `accepted` block of the recent heights: `confirmed` after `confirmations`,
 * `orphaned` when the block left the main chain. Each change is one compare-and-set script, so
 * any number of reporters can poll the same chain.
 */
export class BlockWatcher {
  readonly #o: BlockWatcherOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = true;
  readonly #stats: BlockWatcherStats = {
    polls: 0,
    pollErrors: 0,
    roundsClosed: 0,
    confirmed: 0,
    orphaned: 0,
    candidatesDropped: 0,
    settledFromDaemons: 0,
  };

  constructor(options: BlockWatcherOptions) {
    this.#o = options;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#timer = setInterval(() => this.poke(), this.#o.pollMs);
    this.#timer.unref();
    this.poke();
  }

  /** Poll now (or right after the poll in progress). */
  poke(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  /** Resolves when no poll is running (one started by a `poke` included). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.idle();
  }

  stats(): BlockWatcherStats {
    return { ...this.#stats };
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.poll();
      } catch (error) {
        this.#stats.pollErrors++;
        this.#o.logger.warn({ err: error, chain: this.#o.chain }, 'reporter: block poll failed');
      }
    } while (this.#again && !this.#stopped);
  }

  /** One pass: settle candidates, then follow accepted blocks. */
  async poll(): Promise<void> {
    this.#stats.polls++;
    await this.#settleCandidates();
    if (this.#o.daemons) {
      await this.#followBlocks(this.#o.daemons);
      // A block may have been confirmed before its candidate's round was settled.
      await this.#settleCandidates();
    }
  }

  /**
   * Runs a script with a WAIT after it for the replicas the credits wait for. A shortfall is
   * logged, not retried: a round close or state change lost with a failed master leaves the
   * candidate or record as it was, and the next poll does it again (each script checks first).
   */
  async #runWaited(
    name: 'close-round' | 'block-state',
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    const { redis, replicas, logger, chain } = this.#o;
    const wanted = await replicas.wanted();
    const { reply, acked } = await execWithWait(
      (before) => runScript.pipeline(redis, name, keys, args, before),
      wanted,
      replicas.settings.timeoutMs,
    );
    if (acked !== null && acked < wanted) {
      replicas.recheck();
      logger.warn(
        { chain, script: name, replicas: acked, wanted, timeoutMs: replicas.settings.timeoutMs },
        'reporter: block bookkeeping not confirmed by a Redis replica in time (redone by a later poll if the master is lost)',
      );
    }
    return reply;
  }

  async #settleCandidates(): Promise<void> {
    const { redis, keys, logger, chain } = this.#o;
    const candidates = await redis.hgetall(keys.candidates);
    for (const [hash, text] of Object.entries(candidates)) {
      const now = Date.now();
      const result = (await this.#runWaited(
        'close-round',
        [keys.round, keys.closedRound(hash), keys.blocks, keys.candidates, keys.events, keys.roundTotal],
        [hash, now, this.#o.eventsMaxLen, chain],
      )) as [number, string, number?];
      if (result[0] === 1) {
        this.#stats.roundsClosed++;
        logger.info(
          { chain, hash, totalDiff: Number(result[1]), accounts: result[2] },
          'reporter: round closed on a block of ours',
        );
        continue;
      }
      const why = result[1];
      if (why === 'pending' || why === 'no-record') {
        const candidate = JSON.parse(text) as { ts?: number };
        if (now - (candidate.ts ?? now) > this.#o.candidateMaxAgeMs) {
          await redis.hdel(keys.candidates, hash);
          this.#stats.candidatesDropped++;
          logger.warn({ chain, hash, why }, 'reporter: block candidate never settled; round left open');
        }
      } else if (why === 'rejected' || why === 'stale' || why === 'orphaned') {
        logger.info({ chain, hash, state: why }, 'reporter: block candidate not accepted; round continues');
      }
    }
  }

  async #followBlocks(daemons: DaemonPool): Promise<void> {
    const { redis, keys } = this.#o;
    const tip = await daemons.call<number>('getblockcount');
    // Records stay `accepted` at most `confirmations` blocks unless the daemons stall; look well past that.
    const lookback = Math.max(1000, this.#o.confirmations * 10);
    const hashes = await redis.zrangebyscore(keys.blocksIndex, tip - lookback, '+inf');
    if (hashes.length === 0) return;
    const texts = await redis.hmget(keys.blocks, ...hashes);
    for (const text of texts) {
      if (!text) continue;
      const record = JSON.parse(text) as BlockRecord;
      if (record.state === 'submitted') {
        await this.#settleSubmitted(daemons, record, tip);
        continue;
      }
      if (record.state !== 'accepted') continue;
      const confirmations = await this.#confirmations(daemons, record, tip);
      if (confirmations === null) continue;
      const next =
        confirmations < 0 ? 'orphaned' : confirmations >= this.#o.confirmations ? 'confirmed' : 'accepted';
      await this.#transition(record, next, confirmations);
    }
  }

  /**
   * A record left `submitted`: its jobmanager answered the stratum server (which never asks
   * again) and died before the verdict reached Redis. A block the daemons have in their main
   * chain is ours: `accepted`, so its round closes and it is followed to `confirmed`. Anything
   * else stays `submitted`: what became of it cannot be told from here.
   */
  async #settleSubmitted(daemons: DaemonPool, record: BlockRecord, tip: number): Promise<void> {
    if (Date.now() - record.updatedAt < this.#o.settleSubmittedMs) return;
    const confirmations = await this.#confirmations(daemons, record, tip);
    if (confirmations === null || confirmations < 1) return;
    const before = this.#stats.settledFromDaemons;
    await this.#transition(record, 'accepted', confirmations, () => this.#stats.settledFromDaemons++);
    if (this.#stats.settledFromDaemons > before) {
      this.#o.logger.warn(
        { chain: this.#o.chain, hash: record.hash, height: record.height, jmId: record.jmId },
        'reporter: block record left submitted (its jobmanager died before writing the verdict); the daemons have it in their main chain: accepted',
      );
    }
  }

  /**
   * Confirmations of a block per the daemons: the main chain's hash at its height says whether it
   * is still ours; `getblock` says whether the daemon knows it elsewhere. -1: not in the main
   * chain; null: cannot tell yet.
   */
  async #confirmations(daemons: DaemonPool, record: BlockRecord, tip: number): Promise<number | null> {
    if (record.height > tip) return null; // the daemon we asked is behind
    let atHeight: string;
    try {
      atHeight = await daemons.call<string>('getblockhash', [record.height]);
    } catch (error) {
      // The tip went below the block's height since getblockcount (a reorg in progress).
      if (error instanceof DaemonError && error.code === RpcCode.InvalidParameter) return null;
      throw error;
    }
    if (atHeight === record.hash) return tip - record.height + 1;
    try {
      const block = await daemons.call<{ confirmations: number }>('getblock', [record.hash, 1]);
      // Known but not at its height: a side chain (-1), or the tip moved between the two calls.
      return block.confirmations < 0 ? -1 : null;
    } catch (error) {
      if (!(error instanceof DaemonError) || error.code !== RpcCode.InvalidAddressOrKey) throw error;
      // Never seen by this daemon and another block is at its height: gone once that block is deep.
      return tip - record.height + 1 >= this.#o.confirmations ? -1 : null;
    }
  }

  async #transition(
    record: BlockRecord,
    next: BlockRecord['state'],
    confirmations: number,
    onChanged?: () => void,
  ): Promise<void> {
    const { redis, keys, chain, logger, metrics } = this.#o;
    const changed = (await this.#runWaited(
      'block-state',
      [keys.blocks, keys.events, keys.round, keys.closedRound(record.hash), keys.roundTotal],
      [record.hash, record.state, next, Date.now(), confirmations, this.#o.eventsMaxLen],
    )) as number;
    if (changed !== 1) return;
    onChanged?.();
    if (next === 'confirmed' || next === 'orphaned') {
      this.#stats[next]++;
      metrics.blocks(next);
    }
    logger.info(
      { chain, hash: record.hash, height: record.height, state: next, confirmations },
      'reporter: block state changed',
    );
  }
}
