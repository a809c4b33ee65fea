import { createHash } from 'node:crypto';
import { type BlockTemplate, buildJob } from '@hashwire/chain';
import type { Metrics } from '@hashwire/core';
import type { Job } from '@hashwire/protocol';
import type { Leadership } from '@hashwire/registry';
import type { BlockSubmitter } from './block-submit.js';
import type { JobStore, StoredJob } from './job-store.js';
import type { ResolvedOptions } from './options.js';

export interface PublisherOptions {
  options: ResolvedOptions;
  store: JobStore;
  leadership: Leadership;
  /** Told every job stored, so a block on it can be assembled without Redis. */
  blocks: Pick<BlockSubmitter, 'remember'>;
  metrics: Metrics;
  /** Sends the job to every subscribed stratum server. */
  push(job: Job): void;
}

/** Turns templates into jobs, one at a time, and sends them while this process leads. */
export interface Publisher {
  /** Queues a job from the template; resolves once it went out, or was not (not leader, closed). */
  publish(template: BlockTemplate, cleanJobs: boolean): Promise<void>;
  /** After an election: the current template again, clean only if the block changed since the group's last job. */
  publishAsNewLeader(template: BlockTemplate): Promise<void>;
  /** The last job this process published (null while a standby that never led). */
  readonly lastJob: Job | null;
  /**
   * The jobs this process published before `lastJob` that miners may still be working on: those
   * since the last clean job on the same tip, oldest first, at most `EARLIER_JOBS`. A stratum
   * process that subscribes (started, restarted, or an upgrade's new worker) learns them too, so a
   * share on one is judged as the servers that sent it would judge it, not as an unknown job.
   */
  readonly earlierJobs: readonly Job[];
  readonly jobsPublished: number;
  /** No more jobs; resolves when the one being built is done. */
  close(): Promise<void>;
}

/** A template's identity: the same transactions on the same tip at the same time. */
function templateId(template: BlockTemplate): string {
  const h = createHash('sha256');
  h.update(template.previousblockhash);
  h.update(String(template.curtime));
  h.update(template.longpollid ?? '');
  for (const tx of template.transactions) h.update(tx.hash ?? tx.txid);
  h.update(template.mweb ?? '');
  return h.digest('hex').slice(0, 24);
}

/** How many jobs before the last one a subscriber gets (a stratum server keeps 32). */
export const EARLIER_JOBS = 8;

export function createPublisher(parts: PublisherOptions): Publisher {
  const { options, store, leadership, blocks, metrics } = parts;
  const { id, chain, params } = options;
  const templateIds = new WeakMap<BlockTemplate, string>();
  let lastJob: Job | null = null;
  let earlierJobs: Job[] = [];
  let jobsPublished = 0;
  let closed = false;
  // Jobs are built one after the other: ids and the fencing check stay in order.
  let publishing: Promise<void> = Promise.resolve();

  const publishNow = async (template: BlockTemplate, cleanJobs: boolean, requestedAt: number) => {
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
      ...(options.solo && { solo: options.solo }),
    });
    const stored: StoredJob = {
      job: built.job,
      template,
      payouts: options.payouts,
      poolTag: options.poolTag,
      extranonce1Size: options.extranonce1Size,
      extranonce2Size: options.extranonce2Size,
      ...(options.solo && { solo: options.solo }),
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
    const previous = lastJob;
    if (built.job.cleanJobs || !previous || previous.prevhash !== built.job.prevhash) earlierJobs = [];
    else earlierJobs = [...earlierJobs, previous].slice(-EARLIER_JOBS);
    lastJob = built.job;
    jobsPublished++;
    parts.push(built.job);
    metrics.jobPush((performance.now() - requestedAt) / 1000);
  };

  const publish = (template: BlockTemplate, cleanJobs: boolean): Promise<void> => {
    const requestedAt = performance.now();
    publishing = publishing.then(() => publishNow(template, cleanJobs, requestedAt));
    publishing = publishing.catch(() => {});
    return publishing;
  };

  return {
    publish,
    publishAsNewLeader: (template) =>
      store.latest().then(
        (latest) => publish(template, !latest || latest.height !== template.height),
        () => publish(template, true),
      ),
    get lastJob() {
      return lastJob;
    },
    get earlierJobs() {
      return earlierJobs;
    },
    get jobsPublished() {
      return jobsPublished;
    },
    async close() {
      closed = true;
      await publishing;
    },
  };
}
