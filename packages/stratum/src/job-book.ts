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

/**
 * A job of one stratum server on its way to another (the next version of it, during an upgrade):
 * the job as the jobmanager sent it and whether a new prevhash made it stale. Plain JSON.
 */
export interface HandedJob {
  readonly job: Job;
  readonly stale: boolean;
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
  /** Jobs taken from another server's book (`adopt`) that this one's feed has not sent yet. */
  #adopted = new Set<PreparedJob>();
  #watch: ((jobId: string, key: string) => void) | null = null;

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
    // An adopted job arriving from the feed is new here: it becomes current and goes to miners.
    if (held && held.epoch === job.epoch && !this.#adopted.has(held)) {
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
    if (held) {
      // Shares the other server credited on an adopted job stay duplicates.
      if (this.#adopted.has(held) && held.epoch === job.epoch) {
        for (const key of held.dedupe.keys()) prepared.dedupe.add(key);
      }
      this.#drop(held);
    }
    this.#watchJob(prepared);
    // Only the current job is sent: older SOLO jobs keep their coinbases, not their notify lines.
    this.#current?.solo?.dropLines();
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

  /** Every job held, oldest first, as another server's book takes them (`adopt`). */
  handed(): HandedJob[] {
    return [...this.#jobs.values()].map((p) => ({ job: p.job, stale: p.stale }));
  }

  /**
   * Takes the jobs of another server's book (`handed()` of the version this one replaces), so
   * the shares its miners still submit on earlier jobs are judged here as they were there. Each
   * job this book does not hold goes in before its own (older), never as the current job: a
   * handed job this book's feed sends later is added then as any new job. Stale when it was
   * there or its prevhash is not the current one's. Returns how many were taken.
   */
  adopt(handed: readonly HandedJob[]): number {
    const taken: PreparedJob[] = [];
    for (const { job, stale } of handed) {
      if (job.chain !== this.chain || this.#jobs.has(job.jobId)) continue;
      let prepared: PreparedJob;
      try {
        prepared = prepareJob(job, this.#prepare, job.cleanJobs);
      } catch (error) {
        if (error instanceof JobError) continue;
        throw error;
      }
      prepared.stale = stale || (this.#current !== undefined && this.#current.prevhash !== prepared.prevhash);
      this.#watchJob(prepared);
      this.#adopted.add(prepared);
      taken.push(prepared);
    }
    if (taken.length === 0) return 0;
    const own = [...this.#jobs.values()];
    this.#jobs.clear();
    for (const job of [...taken, ...own]) this.#jobs.set(job.jobId, job);
    while (this.#jobs.size > this.maxJobs) {
      this.#drop(this.#jobs.values().next().value as PreparedJob);
      this.stats.evicted++;
    }
    return taken.length;
  }

  /**
   * Tells `listener` of every share key the jobs' duplicate detection takes from now on (with
   * `acceptedKeys` for those it holds already), until the returned function is called.
   */
  watchAccepted(listener: (jobId: string, key: string) => void): () => void {
    this.#watch = listener;
    for (const job of this.#jobs.values()) this.#watchJob(job);
    return () => {
      this.#watch = null;
      for (const job of this.#jobs.values()) job.dedupe.onAdded = null;
    };
  }

  /** Every share key held for duplicate detection, with its job. */
  *acceptedKeys(): Generator<[jobId: string, key: string]> {
    for (const job of this.#jobs.values()) for (const key of job.dedupe.keys()) yield [job.jobId, key];
  }

  #watchJob(job: PreparedJob): void {
    const listener = this.#watch;
    job.dedupe.onAdded = listener ? (key) => listener(job.jobId, key) : null;
  }

  #drop(job: PreparedJob): void {
    this.#jobs.delete(job.jobId);
    this.#adopted.delete(job);
    job.dedupe.onAdded = null;
    job.dedupe.clear();
  }
}
