import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { z } from 'zod';
import { decodeCursor, encodeCursor } from './cursor.js';

/*
 * An account's money, read from the keys the payer's scripts write (docs/payouts.md, "Redis
 * keys"): the balance (`bal:{chain}`), and two lexically ordered indexes written in the same
 * atomic step as the ledger: `payout:{chain}:earnidx` (each credit, fee or remainder) and
 * `payout:{chain}:payidx` (each payment with its txid). Members start with `<account>|`, and an
 * account cannot hold `|`, so one account's entries are one lexical range: a page costs
 * O(log N + page) whatever the number of accounts.
 */

/** Satoshis as a decimal integer string: exact for any amount (JSON numbers stop at 2^53). */
const sat = z.string().regex(/^\d+$/).describe('satoshis, a decimal integer string');

/** What the api knows of a chain's payments (from `chains[].payments` of the pool config). */
export interface ApiPayments {
  scheme: 'pplns' | 'prop' | 'solo';
  minimumPayoutSat: number;
}

export const balanceResponse = z.object({
  chain: z.string(),
  account: z.string(),
  balanceSat: sat.describe('credited and not yet paid (satoshis)'),
  paidSat: sat.describe('paid to it so far, every payment with a txid (satoshis)'),
  payingSat: sat.describe(
    'in the batch being paid now (recorded as intent, its txid not yet recorded); 0 else',
  ),
  held: z
    .string()
    .nullable()
    .describe('why its payments are held (an address the daemon refuses); null when not'),
  payments: z
    .object({
      scheme: z.enum(['pplns', 'prop', 'solo']),
      minimumPayoutSat: z.number().describe('paid once the balance reaches this'),
    })
    .nullable()
    .describe('how the chain pays; null when the chain pays nobody (no `payments` in the pool config)'),
});

export const paymentItem = z.object({
  batchId: z.string().describe('the payment batch (its id is in the wallet transaction’s comment)'),
  txid: z.string().describe('the wallet transaction that paid it'),
  sat: sat.describe('satoshis paid to this account by the batch'),
  at: z.number().describe('when the payment was recorded, epoch ms'),
});

export const earningItem = z.object({
  blockHash: z.string(),
  height: z.number().nullable().describe('the block’s height; null when its record is gone'),
  type: z
    .enum(['credit', 'fee', 'remainder'])
    .describe('credit: its share of the block; fee and remainder: to the fee account'),
  sat: sat.describe('satoshis this block credited to the account'),
  at: z.number().describe('when the block was shared out (after maturity), epoch ms'),
});

type Page<T> = { items: T[]; next: string | null };

/**
 * One page of an account's members of a lexical index, newest first; the cursor is the last
 * member's part after `<account>|`, so the next page starts strictly below it (stable).
 */
async function indexPage(
  redis: RedisClient,
  key: string,
  account: string,
  options: { limit: number; cursor?: string | undefined },
): Promise<{ parts: string[][]; next: string | null }> {
  const after = decodeCursor(options.cursor, ['string'])?.[0] as string | undefined;
  const max = after !== undefined ? `(${account}|${after}` : `(${account}}`;
  const members = await redis.zrevrangebylex(key, max, `[${account}|`, 'LIMIT', 0, options.limit + 1);
  const page = members.slice(0, options.limit);
  const last = page.at(-1);
  return {
    parts: page.map((m) => m.slice(account.length + 1).split('|')),
    next: members.length > options.limit && last ? encodeCursor([last.slice(account.length + 1)]) : null,
  };
}

export async function readBalance(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  account: string,
  payments: ApiPayments | null,
): Promise<z.infer<typeof balanceResponse>> {
  const [balance, held, open, paid] = await Promise.all([
    redis.hget(keys.balances(chain), account),
    redis.hget(keys.payoutHeld(chain), account),
    redis.get(keys.payoutOpenBatch(chain)),
    redis.zrangebylex(keys.payoutPaymentsIndex(chain), `[${account}|`, `(${account}}`),
  ]);
  let paying = 0n;
  if (open) {
    const text = await redis.hget(keys.payoutBatches(chain), open);
    const batch = text ? (JSON.parse(text) as { state: string; payments: [string, string][] }) : null;
    if (batch?.state === 'intent')
      for (const [who, amount] of batch.payments) if (who === account) paying += BigInt(amount);
  }
  const paidSat = paid.reduce((sum, m) => sum + BigInt(m.slice(m.lastIndexOf('|') + 1)), 0n);
  return {
    chain,
    account,
    balanceSat: BigInt(balance ?? '0').toString(),
    paidSat: paidSat.toString(),
    payingSat: paying.toString(),
    held: held ?? null,
    payments: payments ? { scheme: payments.scheme, minimumPayoutSat: payments.minimumPayoutSat } : null,
  };
}

export async function readPayments(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  account: string,
  options: { limit: number; cursor?: string | undefined },
): Promise<Page<z.infer<typeof paymentItem>>> {
  const { parts, next } = await indexPage(redis, keys.payoutPaymentsIndex(chain), account, options);
  return {
    items: parts.map(([ts, batchId, txid, amount]) => ({
      batchId: batchId ?? '',
      txid: txid ?? '',
      sat: amount ?? '0',
      at: Number(ts),
    })),
    next,
  };
}

export async function readEarnings(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  account: string,
  options: { limit: number; cursor?: string | undefined },
): Promise<Page<z.infer<typeof earningItem>>> {
  const { parts, next } = await indexPage(redis, keys.payoutEarningsIndex(chain), account, options);
  const hashes = [...new Set(parts.map((p) => p[1] ?? ''))];
  const records = hashes.length > 0 ? await redis.hmget(keys.blocks(chain), ...hashes) : [];
  const heights = new Map<string, number | null>();
  hashes.forEach((hash, i) => {
    const record = records[i];
    heights.set(hash, record ? ((JSON.parse(record) as { height?: number }).height ?? null) : null);
  });
  return {
    items: parts.map(([ts, hash, type, amount]) => ({
      blockHash: hash ?? '',
      height: heights.get(hash ?? '') ?? null,
      type: type as 'credit' | 'fee' | 'remainder',
      sat: amount ?? '0',
      at: Number(ts),
    })),
    next,
  };
}
