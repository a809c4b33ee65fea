import type { Job } from '@hashwire/protocol';
import { ShareTargetCache } from './difficulty.js';
import { JobError, type PrepareJobOptions, type PreparedJob, prepareJob } from './job.js';

export interface JobBookOptions extends PrepareJobOptions {
  /** Chain id the book serves (`Job.chain`); jobs for other chains are refused. */
  readonly chain: string;
  /**
   * Jobs kept (current and stale, oldest dropped first). A share on a dropped job is stale.
   * @defaultValue 32
   */
  readonly maxJobs?: number;
}

/** What {@link JobBook.add} did with a job. */
export type JobAddOutcome =
  | {
      readonly status: 'added';
      readonly job: PreparedJob;
      /** Whether miners must drop older work (new prevhash, or the job said so). */
      readonly clean: boolean;
      /** How many older jobs the new prevhash made stale. */
      readonly staled: number;
    }
  /** Its epoch is below the highest seen: a deposed jobmanager still publishing. */
  | { readonly status: 'fenced'; readonly highestEpoch: number }
  /** Same id and epoch as a job already held (a replay after re-subscribing). */
  | { readonly status: 'known'; readonly job: PreparedJob };

export interface JobBookStats {
  added: number;
  fenced: number;
  known: number;
  /** Jobs made stale by a new prevhash. */
  staled: number;
  /** Jobs dropped from the bounded history. */
  evicted: number;
}

/**
 * The jobs of one chain on one stratum server: current jobs by id, stale ones (an earlier
 * prevhash) kept a while so their shares get a precise answer, bounded history, and epoch
 * fencing so a deposed jobmanager cannot push work after its successor.
 */
export class JobBook {
  readonly chain: string;
  readonly maxJobs: number;
  readonly stats: JobBookStats = { added: 0, fenced: 0, known: 0, staled: 0, evicted: 0 };
  #jobs = new Map<string, PreparedJob>();
  #current: PreparedJob | undefined;
  #highestEpoch = -1;
  #prepare: PrepareJobOptions;

  constructor(options: JobBookOptions) {
    const maxJobs = options.maxJobs ?? 32;
    if (!Number.isInteger(maxJobs) || maxJobs < 1) {
      throw new RangeError(`maxJobs must be a positive integer, got ${maxJobs}`);
    }
    this.chain = options.chain;
    this.maxJobs = maxJobs;
    this.#prepare = { ...options, targets: options.targets ?? new ShareTargetCache(options.params) };
  }

  /** The newest job: what a new or resumed session gets first. */
  get current(): PreparedJob | undefined {
    return this.#current;
  }

  get highestEpoch(): number {
    return this.#highestEpoch;
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** The job a share names, stale or not; undefined when unknown or dropped. */
  get(jobId: string): PreparedJob | undefined {
    return this.#jobs.get(jobId);
  }

  /**
   * Takes a job from a jobmanager. A job on a new prevhash is always clean (its notify says
   * clean_jobs=true whatever the jobmanager set) and makes every held job stale.
   *
   * @throws JobError `wrong-chain` or `bad-job`
   */
  add(job: Job): JobAddOutcome {
    if (job.chain !== this.chain) {
      throw new JobError(
        'wrong-chain',
        `job ${job.jobId} is for chain ${job.chain}, this book serves ${this.chain}`,
      );
    }
    if (job.epoch < this.#highestEpoch) {
      this.stats.fenced++;
      return { status: 'fenced', highestEpoch: this.#highestEpoch };
    }
    const held = this.#jobs.get(job.jobId);
    if (held && held.epoch === job.epoch) {
      this.stats.known++;
      return { status: 'known', job: held };
    }
    const newTip = this.#current !== undefined && this.#current.prevhash !== job.prevhash.toLowerCase();
    const prepared = prepareJob(job, this.#prepare, job.cleanJobs || newTip);
    this.#highestEpoch = job.epoch;

    let staled = 0;
    if (newTip) {
      for (const old of this.#jobs.values()) {
        if (old.stale || old.prevhash === prepared.prevhash) continue;
        old.stale = true;
        old.dedupe.clear();
        staled++;
      }
      this.stats.staled += staled;
    }
    if (held) this.#drop(held);
    this.#jobs.set(prepared.jobId, prepared);
    this.#current = prepared;
    this.stats.added++;
    while (this.#jobs.size > this.maxJobs) {
      const oldest = this.#jobs.values().next().value as PreparedJob;
      this.#drop(oldest);
      this.stats.evicted++;
    }
    return { status: 'added', job: prepared, clean: prepared.job.cleanJobs, staled };
  }

  #drop(job: PreparedJob): void {
    this.#jobs.delete(job.jobId);
    job.dedupe.clear();
  }
}
