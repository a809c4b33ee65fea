import type { RedisClient } from '@hashwire/registry';
import type { PayoutKeys } from './keys.js';

/** `ts` as the indexes sort it: 13 digits, zero-padded (epoch ms up to the year 2286). */
export const indexStamp = (ts: string | number) => String(ts).padStart(13, '0');

/** The earnings index member of one ledger credit, fee or remainder (as `share-out.lua` writes it). */
export function earningsMember(
  account: string,
  ts: string | number,
  hash: string,
  type: string,
  sat: string,
) {
  return `${account}|${indexStamp(ts)}|${hash}|${type}|${sat}`;
}

/** The payments index member of one debit (as `pay-record.lua` writes it); `sat` positive. */
export function paymentMember(
  account: string,
  ts: string | number,
  batchId: string,
  txid: string,
  sat: string,
) {
  return `${account}|${indexStamp(ts)}|${batchId}|${txid}|${sat}`;
}

/**
 * Fills the read API's indexes (earnings and payments per account) from the ledger entries
 * after `payout:{chain}:indexed`, for ledgers written before the scripts kept them. Each member
 * is derived from its entry alone, so writing one the scripts already wrote changes nothing, and
 * two payers doing it at once agree. Returns how many ledger entries it read.
 */
export async function indexLedger(redis: RedisClient, keys: PayoutKeys, count = 1000): Promise<number> {
  const last = await redis.get(keys.indexed);
  let start = last ?? '-';
  let read = 0;
  for (;;) {
    const entries = (await redis.xrange(keys.ledger, start, '+', 'COUNT', count)) as [string, string[]][];
    const fresh = entries.filter(([id]) => id !== start || start === '-');
    if (fresh.length === 0) return read;
    const earnings: string[] = [];
    const payments: string[] = [];
    for (const [, flat] of fresh) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
      const { type, account, sat, ref, ts } = f;
      if (!type || !account || !sat || !ref || !ts) continue;
      if (type === 'debit') {
        if (f.txid) payments.push(paymentMember(account, ts, ref, f.txid, sat.replace(/^-/, '')));
      } else earnings.push(earningsMember(account, ts, ref, type, sat));
    }
    const multi = redis.multi();
    if (earnings.length > 0) multi.zadd(keys.earningsIndex, ...earnings.flatMap((m) => [0, m]));
    if (payments.length > 0) multi.zadd(keys.paymentsIndex, ...payments.flatMap((m) => [0, m]));
    start = (fresh.at(-1) as [string, string[]])[0];
    multi.set(keys.indexed, start);
    await multi.exec();
    read += fresh.length;
    if (entries.length < count) return read;
  }
}
