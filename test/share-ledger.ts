import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type LoggedShare, readShareLog } from '@hashwire/reporter';
import type { SimShare } from '@hashwire/testkit';
import { expect } from 'vitest';

// Share-by-share accounting shared by the end-to-end tests: what the sim miners recorded
// (every submit and its answer) against what the reporters logged as credited.

/** Identity of a submission, as the miner sent it and as the share log records it. */
export const submissionKey = (s: {
  jobId: string;
  extranonce1: string;
  extranonce2: string;
  ntime: string;
  nonce: string;
  version: string;
}) => [s.jobId, s.extranonce1, s.extranonce2, s.ntime, s.nonce, s.version].join('/').toLowerCase();

/** Every credited share of the chain's share log, oldest first. */
export async function readLoggedShares(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
): Promise<LoggedShare[]> {
  const logged: LoggedShare[] = [];
  for await (const entry of readShareLog(redis, keys, chain)) logged.push(...entry.shares);
  return logged;
}

export interface ShareLedger {
  /** Every distinct submission the miners sent (the last record of a resend wins). */
  submitted: Map<string, SimShare>;
  /** How many times each submission was credited. */
  creditedByKey: Map<string, number>;
  creditedById: Map<string, number>;
  /** Submissions credited more than once, with the count. */
  doubled: [string, number][];
  /** Share ids logged more than once. */
  doubledIds: [string, number][];
  /** Shares a miner saw accepted that were never credited. */
  lost: SimShare[];
  /** Credited shares no miner submitted. */
  unknown: LoggedShare[];
  /** Credited shares whose miner was told they were rejected. */
  creditedRejections: LoggedShare[];
  /** Miner answers over every distinct submission. */
  answers: Record<SimShare['answer'], number>;
  /** Submissions without a final answer (connection gone first) that were credited anyway. */
  noAnswerCredited: number;
}

/** Compares what the miners saw with what was credited. */
export function compareShares(minerShares: Iterable<SimShare>, logged: readonly LoggedShare[]): ShareLedger {
  const creditedByKey = new Map<string, number>();
  const creditedById = new Map<string, number>();
  for (const s of logged) {
    creditedByKey.set(submissionKey(s), (creditedByKey.get(submissionKey(s)) ?? 0) + 1);
    creditedById.set(s.shareId, (creditedById.get(s.shareId) ?? 0) + 1);
  }
  const submitted = new Map<string, SimShare>();
  for (const s of minerShares) submitted.set(submissionKey(s), s);
  const answers = { accepted: 0, rejected: 0, 'no answer': 0, pending: 0 };
  for (const s of submitted.values()) answers[s.answer]++;
  return {
    submitted,
    creditedByKey,
    creditedById,
    doubled: [...creditedByKey].filter(([, n]) => n > 1),
    doubledIds: [...creditedById].filter(([, n]) => n > 1),
    lost: [...submitted.values()].filter(
      (s) => s.answer === 'accepted' && !creditedByKey.has(submissionKey(s)),
    ),
    unknown: logged.filter((s) => !submitted.has(submissionKey(s))),
    creditedRejections: logged.filter((s) => submitted.get(submissionKey(s))?.answer === 'rejected'),
    answers,
    noAnswerCredited: [...submitted.values()].filter(
      (s) => s.answer !== 'accepted' && s.answer !== 'rejected' && creditedByKey.has(submissionKey(s)),
    ).length,
  };
}

/**
 * What a miner would notice in the answers: shares whose connection closed before `until` (when
 * the miners were stopped) without an answer, and rejections other than stale (21). On regtest
 * blocks come all the time, so shares on a replaced job are stale; anything else (not
 * subscribed, unauthorized, unknown session…) would be the pool's doing.
 */
export function answerIssues(
  shares: Iterable<SimShare>,
  until: number,
): { unanswered: SimShare[]; notStale: SimShare[]; rejectedByCode: Record<string, number> } {
  const all = [...shares];
  const rejectedByCode: Record<string, number> = {};
  for (const s of all.filter((s) => s.answer === 'rejected')) {
    rejectedByCode[String(s.code)] = (rejectedByCode[String(s.code)] ?? 0) + 1;
  }
  return {
    // 'no answer' is stamped when the connection closed under the share: before `until` it was
    // not the final stop that closed it.
    unanswered: all.filter((s) => s.answer === 'no answer' && (s.answeredAt ?? until) < until),
    notStale: all.filter((s) => s.answer === 'rejected' && s.code !== 21),
    rejectedByCode,
  };
}

/**
 * The exactly-once checks of an end-to-end run: nothing a miner saw accepted is missing, nothing
 * is credited twice, from no miner's submission or after the miner was told it was rejected, and
 * every share was answered before the miners stopped (`unanswered` from answerIssues).
 */
export function expectCreditedOnce(ledger: ShareLedger, unanswered: readonly SimShare[]): void {
  expect(describeShares(ledger.lost), 'shares miners saw accepted but never credited').toEqual([]);
  expect(ledger.doubled, 'submissions credited more than once').toEqual([]);
  expect(ledger.doubledIds, 'share ids logged twice').toEqual([]);
  expect(describeShares(ledger.unknown), 'credited shares no miner submitted').toEqual([]);
  expect(
    describeShares(ledger.creditedRejections),
    'credited shares the miner was told were rejected',
  ).toEqual([]);
  expect(describeShares(unanswered), 'shares left without an answer before the miners stopped').toEqual([]);
}

/** One line per share for a failure message: which miner, which submission, what it was told. */
export function describeShares(shares: readonly (SimShare | LoggedShare)[], limit = 20): string[] {
  const lines = shares
    .slice(0, limit)
    .map((s) =>
      'username' in s
        ? `${s.username} (worker ${s.worker}) ${submissionKey(s)} submitted at ${s.submittedAt}, answered ${s.answer}${s.code ? ` ${s.code}` : ''} at ${s.answeredAt ?? '-'}`
        : `${s.account}.${s.worker} ${submissionKey(s)} share ${s.shareId}`,
    );
  if (shares.length > limit) lines.push(`… and ${shares.length - limit} more`);
  return lines;
}

/**
 * Keys matching `pattern`: KEYS on the one Redis, or on every master of a Cluster (a Cluster
 * client sends a key-less command to one node only).
 */
export async function keysMatching(redis: RedisClient, pattern: string): Promise<string[]> {
  if (!('nodes' in redis)) return redis.keys(pattern);
  const perNode = await Promise.all(redis.nodes('master').map((node) => node.keys(pattern)));
  return perNode.flat();
}
