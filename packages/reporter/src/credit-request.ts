import { RpcErrorCode, type SubBatchOutcome } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { RpcError } from '@hashwire/rpc';
import { type CreditPlan, type CreditSettings, planCredit } from './credit.js';
import type { ReporterKeys } from './keys.js';
import { type ReplicaCount, execWithWait, waitForEarlierWrites } from './replication.js';
import { runScript } from './scripts.js';
import type { ValidRequest } from './validate.js';

/** What crediting one request did. */
export interface CreditRun {
  /** One outcome per sub-batch of the request, by seq. */
  outcomes: Map<number, SubBatchOutcome>;
  /** Sub-batches answered as credited before (`repeat`, `forgotten`). */
  repeats: number;
  /** Seqs acknowledged for another sub-batch id (two servers on one spool): refused. */
  conflicts: number[];
  /** The plan the script wrote, if it wrote one. */
  written: CreditPlan | null;
  /** Shares found credited through another batch, counted as duplicates. */
  duplicates: number;
  scriptRuns: number;
  /** Replicas the writes had to reach before an acknowledgement (0: no wait). */
  wanted: number;
  /** Replicas the WAITs confirmed, the fewest over the request's writes (null: no wait). */
  acked: number | null;
}

/** Replicas to confirm each write before it is acknowledged (see replication.ts). */
export interface CreditReplication {
  replicas: ReplicaCount;
  timeoutMs: number;
  /** The chain's probe key, written when a script wrote nothing so WAIT covers earlier writes. */
  probeKey: string;
}

/** Redis failed while crediting: nothing of the request is known to be written. */
export class ShareStoreError extends Error {
  override readonly name = 'ShareStoreError';
  constructor(
    readonly subBatches: number,
    options: { cause: unknown },
  ) {
    super('share store unavailable', options);
  }
}

/**
 * Credits a validated request with `credit-batch.lua`: one run in the common case. Sub-batches
 * answered before and shares another batch claimed first are found by the script, which then
 * writes nothing, so the rest is planned again. Each try removes sub-batches or finds new
 * duplicates only (neither is ever taken back), so this ends.
 */
export async function creditRequest(
  redis: RedisClient,
  keys: ReporterKeys,
  settings: Omit<CreditSettings, 'now'>,
  request: ValidRequest,
  replication: CreditReplication | null = null,
): Promise<CreditRun> {
  const run: CreditRun = {
    outcomes: new Map(),
    repeats: 0,
    conflicts: [],
    written: null,
    duplicates: 0,
    scriptRuns: 0,
    wanted: 0,
    acked: null,
  };
  const confirmed = (acked: number | null) => {
    if (acked !== null) run.acked = run.acked === null ? acked : Math.min(run.acked, acked);
  };
  let answeredBefore = false;
  for (const [seq, error] of request.refused) {
    run.outcomes.set(seq, { seq, status: 'refused', error: { code: error.code, message: error.message } });
  }
  let subs = request.subs;
  const duplicates = new Set<string>();
  while (subs.length > 0) {
    const plan = planCredit(
      { stratumId: request.stratumId, spoolId: request.spoolId, floor: request.floor, subs },
      keys,
      { ...settings, now: Date.now() },
      duplicates,
    );
    let answer: (number | string | number[])[];
    try {
      // The WAIT rides in the script's pipeline, so it reaches the node (and the connection)
      // that made the write, on a Cluster too.
      run.wanted = replication ? await replication.replicas.wanted() : 0;
      const waited = await execWithWait(
        (before) => runScript.pipeline(redis, 'credit-batch', plan.keys, plan.args, before),
        run.wanted,
        replication?.timeoutMs ?? 0,
      );
      answer = waited.reply as typeof answer;
      confirmed(waited.acked);
    } catch (error) {
      throw new ShareStoreError(subs.length, { cause: error });
    }
    run.scriptRuns++;
    if (answer[0] === 0) {
      answeredBefore = true;
      const answered = new Set<number>();
      for (let i = 1; i + 1 < answer.length; i += 2) {
        const seq = Number(answer[i]);
        const code = Number(answer[i + 1]);
        answered.add(seq);
        if (code === -2) {
          run.conflicts.push(seq);
          const message = `spool ${request.spoolId} seq ${seq} was acknowledged for another sub-batch: two stratum servers share one spool (a copied spool directory?)`;
          run.outcomes.set(seq, {
            seq,
            status: 'refused',
            error: { code: RpcErrorCode.BadRequest, message },
          });
          continue;
        }
        run.repeats++;
        run.outcomes.set(seq, {
          seq,
          status: code === -1 ? 'forgotten' : 'repeat',
          credited: Math.max(code, 0),
        });
      }
      subs = subs.filter((b) => !answered.has(b.seq));
      continue;
    }
    if (answer[0] === 2) {
      const before = duplicates.size;
      for (const position of answer[1] as number[]) duplicates.add(plan.seenShares[Number(position) - 1]!);
      if (duplicates.size === before) {
        // Cannot happen (the script names only shares it was given); never loop on it.
        throw new RpcError(RpcErrorCode.Internal, 'duplicate check named no new share');
      }
      continue;
    }
    for (const c of plan.credits) {
      run.outcomes.set(c.seq, { seq: c.seq, status: 'credited', credited: c.credited });
    }
    run.written = plan;
    run.duplicates = duplicates.size;
    break;
  }
  if (replication && answeredBefore && run.wanted > 0) {
    // Answered as credited before, perhaps by a try whose WAIT fell short: the repeat is
    // acknowledged only once a replica has that earlier write too.
    try {
      confirmed(await waitForEarlierWrites(redis, replication.probeKey, run.wanted, replication.timeoutMs));
    } catch (error) {
      throw new ShareStoreError(request.subs.length, { cause: error });
    }
  }
  return run;
}
