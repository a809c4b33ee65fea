import type { RedisClient } from '@hashwire/registry';
import { coinToSat } from './amounts.js';
import type { PayoutKeys } from './keys.js';
import type { BlockShareOut, DaemonCall } from './maturity.js';
import type { PaymentBatch } from './payer.js';

/** Every figure of an audit, in satoshis (as decimal strings, so JSON keeps them exact). */
export interface AuditReport {
  ok: boolean;
  /** What failed, one line each; empty when ok. */
  problems: string[];
  blocks: { credited: number; void: number };
  /** Σ over credited blocks. */
  rewardsSat: string;
  feesSat: string;
  remaindersSat: string;
  creditedToMinersSat: string;
  /** Σ balances, all accounts (the fee account included). */
  balancesSat: string;
  /** Σ over sent batches. */
  paidSat: string;
  /** Σ ledger entries by type. */
  ledger: { credit: string; fee: string; remainder: string; debit: string; entries: number };
  accounts: number;
  batches: { sent: number; failed: number; open: string | null };
  /** Sent batches whose transaction the wallet shows with exactly the batch's amounts (when a wallet was given). */
  walletChecked?: number;
}

interface LedgerSums {
  byAccount: Map<string, bigint>;
  byType: Record<'credit' | 'fee' | 'remainder' | 'debit', bigint>;
  entries: number;
}

async function sumLedger(redis: RedisClient, key: string): Promise<LedgerSums> {
  const sums: LedgerSums = {
    byAccount: new Map(),
    byType: { credit: 0n, fee: 0n, remainder: 0n, debit: 0n },
    entries: 0,
  };
  let start = '-';
  for (;;) {
    const page = (await redis.xrange(key, start, '+', 'COUNT', 1000)) as [string, string[]][];
    for (const [, fields] of page) {
      const entry: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
      const sat = BigInt(entry.sat ?? '0');
      const account = entry.account ?? '';
      sums.byAccount.set(account, (sums.byAccount.get(account) ?? 0n) + sat);
      const type = entry.type as keyof LedgerSums['byType'];
      if (type in sums.byType) sums.byType[type] += sat;
      sums.entries++;
    }
    if (page.length < 1000) return sums;
    start = `(${page[page.length - 1]?.[0]}`;
  }
}

/**
 * Proves the books to the satoshi: each balance is the sum of its ledger; the ledger's credits,
 * fees and remainders are what the credited blocks shared out; each block's reward is its fee,
 * remainder and credits; what was paid is what the sent batches say (and, with a wallet, what
 * its transactions sent); so balances + paid = matured rewards, and the miners' part of it is
 * the rewards minus fees and remainders.
 */
export async function auditPayouts(
  redis: RedisClient,
  keys: PayoutKeys,
  wallet?: DaemonCall,
): Promise<AuditReport> {
  const problems: string[] = [];
  const [shared, balances, batchTexts, open] = await Promise.all([
    redis.hgetall(keys.shared),
    redis.hgetall(keys.balances),
    redis.hgetall(keys.batches),
    redis.get(keys.open),
  ]);
  const ledger = await sumLedger(redis, keys.ledger);

  let rewards = 0n;
  let fees = 0n;
  let remainders = 0n;
  let credited = 0n;
  const blocks = { credited: 0, void: 0 };
  for (const text of Object.values(shared)) {
    const block = JSON.parse(text) as BlockShareOut;
    if (block.state !== 'credited') {
      blocks.void++;
      continue;
    }
    blocks.credited++;
    const r = BigInt(block.rewardSat);
    const f = BigInt(block.feeSat);
    const m = BigInt(block.remainderSat);
    const c = BigInt(block.creditedSat);
    if (f + m + c !== r)
      problems.push(`block ${block.hash}: fee ${f} + remainder ${m} + credits ${c} ≠ reward ${r}`);
    const perAccount = await redis.hgetall(keys.blockCredits(block.hash));
    let sum = 0n;
    for (const sat of Object.values(perAccount)) sum += BigInt(sat);
    if (sum !== c)
      problems.push(`block ${block.hash}: its credits hash sums to ${sum}, the share-out says ${c}`);
    rewards += r;
    fees += f;
    remainders += m;
    credited += c;
  }

  let balanceSum = 0n;
  const accounts = new Set([...Object.keys(balances), ...ledger.byAccount.keys()]);
  for (const account of accounts) {
    const balance = BigInt(balances[account] ?? '0');
    const sum = ledger.byAccount.get(account) ?? 0n;
    if (balance !== sum) problems.push(`account ${account}: balance ${balance} ≠ its ledger ${sum}`);
    if (balance < 0n) problems.push(`account ${account}: negative balance ${balance}`);
    balanceSum += balance;
  }

  let paid = 0n;
  const batches = { sent: 0, failed: 0, open };
  let walletChecked = 0;
  for (const text of Object.values(batchTexts)) {
    const batch = JSON.parse(text) as PaymentBatch;
    if (batch.state === 'failed') batches.failed++;
    if (batch.state !== 'sent') continue;
    batches.sent++;
    let total = 0n;
    for (const [, sat] of batch.payments) total += BigInt(sat);
    if (total !== BigInt(batch.totalSat))
      problems.push(`batch ${batch.id}: payments sum to ${total}, total says ${batch.totalSat}`);
    paid += total;
    if (wallet && batch.txid) {
      const tx = await wallet<{ details: { category: string; address?: string; amount: number }[] }>(
        'gettransaction',
        [batch.txid, true],
      );
      const sent = new Map<string, bigint>();
      for (const d of tx.details) {
        if (d.category !== 'send' || !d.address) continue;
        sent.set(d.address, (sent.get(d.address) ?? 0n) - coinToSat(d.amount));
      }
      const expected = new Map(batch.payments.map(([a, s]) => [a, BigInt(s)] as const));
      const same = sent.size === expected.size && [...expected].every(([a, s]) => sent.get(a) === s);
      if (same) walletChecked++;
      else
        problems.push(
          `batch ${batch.id}: wallet transaction ${batch.txid} does not send exactly the batch's amounts`,
        );
    }
  }

  const t = ledger.byType;
  if (t.credit !== credited) problems.push(`ledger credits ${t.credit} ≠ credited by blocks ${credited}`);
  if (t.fee !== fees) problems.push(`ledger fees ${t.fee} ≠ block fees ${fees}`);
  if (t.remainder !== remainders)
    problems.push(`ledger remainders ${t.remainder} ≠ block remainders ${remainders}`);
  if (-t.debit !== paid) problems.push(`ledger debits ${-t.debit} ≠ paid by sent batches ${paid}`);
  if (balanceSum + paid !== rewards)
    problems.push(`balances ${balanceSum} + paid ${paid} ≠ matured rewards ${rewards}`);

  return {
    ok: problems.length === 0,
    problems,
    blocks,
    rewardsSat: rewards.toString(),
    feesSat: fees.toString(),
    remaindersSat: remainders.toString(),
    creditedToMinersSat: credited.toString(),
    balancesSat: balanceSum.toString(),
    paidSat: paid.toString(),
    ledger: {
      credit: t.credit.toString(),
      fee: t.fee.toString(),
      remainder: t.remainder.toString(),
      debit: t.debit.toString(),
      entries: ledger.entries,
    },
    accounts: accounts.size,
    batches,
    ...(wallet ? { walletChecked } : {}),
  };
}
