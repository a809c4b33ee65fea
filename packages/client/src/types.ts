/**
 * What the read API answers (`/v1/openapi.json` describes the same shapes, generated from the
 * schemas that validate them on the server).
 */

export interface Hashrate {
  '5m': number;
  '1h': number;
  '24h': number;
}

export interface PoolChain {
  chain: string;
  algorithm: 'sha256d' | 'scrypt';
  hashrate: Hashrate;
  /** Accounts with a share accepted in the last 10 minutes. */
  minersOnline: number;
  workersOnline: number;
  /** From the latest job; null before any. */
  network: { height: number; difficulty: number; jobAt: number } | null;
  round: { accounts: number; totalDiff: number };
  /** The chain's shares by result, pool-wide, since the pool began counting them. */
  shares: ShareCounts;
}

export interface ShareCounts {
  accepted: number;
  stale: number;
  duplicate: number;
  lowdiff: number;
  invalid: number;
}

/** One point of a hashrate history: hashes per second over the interval starting at `t`. */
export interface HistoryPoint {
  /** Start of the interval, epoch ms. */
  t: number;
  hashrate: number;
}

/** The stored hashrate history of a chain or an account. */
export interface HashrateHistory {
  chain: string;
  /** Present for an account's history. */
  account?: string;
  /** When it was read, epoch ms. */
  at: number;
  /** Every 5 minutes from the start of the previous hour to now, oldest first (the current one so far). */
  fiveMinutes: HistoryPoint[];
  /** Every hour of the last 24 and the current one, oldest first. */
  hours: HistoryPoint[];
}

export interface Pool {
  chains: PoolChain[];
}

export type BlockState = 'submitted' | 'accepted' | 'rejected' | 'stale' | 'confirmed' | 'orphaned';

export interface Block {
  hash: string;
  chain: string;
  height: number;
  state: BlockState;
  confirmations: number | null;
  finder: { account: string; worker: string; shareId: string } | null;
  submittedAt: number | null;
  updatedAt: number;
  reason: string | null;
  round: { accounts: number; totalDiff: number; closedAt: number; returned: boolean } | null;
}

export interface Account {
  chain: string;
  account: string;
  hashrate: Hashrate;
  /** Difficulty credited to it in the current round. */
  roundDiff: number;
  workers: number;
  recentBlocks: Block[];
}

export interface Worker {
  /** "" for shares sent as the bare account. */
  name: string;
  lastShareMs: number;
  hashrate: { '1m': number; '5m': number; '60m': number };
  accepted: number;
  stale: number;
  rejected: number;
  duplicate: number;
  lowdiff: number;
  invalid: number;
  acceptedDiff: number;
}

/** Satoshis as a decimal integer string (exact: JSON numbers stop at 2^53); `BigInt(sat)` to count. */
export type Sat = string;

export interface Balance {
  chain: string;
  account: string;
  /** Credited and not yet paid. */
  balanceSat: Sat;
  /** Paid so far (every payment with a txid). */
  paidSat: Sat;
  /** In the batch being paid now (intent recorded, txid not yet); '0' else. */
  payingSat: Sat;
  /** Why its payments are held (an address the daemon refuses); null when not. */
  held: string | null;
  /** How the chain pays; null when it pays nobody. */
  payments: { scheme: 'pplns' | 'prop' | 'solo'; minimumPayoutSat: number } | null;
}

export interface Payment {
  /** The payment batch (its id is in the wallet transaction's comment). */
  batchId: string;
  txid: string;
  sat: Sat;
  /** When the payment was recorded, epoch ms. */
  at: number;
}

export interface Earning {
  blockHash: string;
  /** null when the block's record is gone. */
  height: number | null;
  /** credit: the account's share of the block; fee, remainder: to the fee account. */
  type: 'credit' | 'fee' | 'remainder';
  sat: Sat;
  /** When the block was shared out (after maturity), epoch ms. */
  at: number;
}

export interface Page<T> {
  items: T[];
  /** Cursor of the next page; null on the last. */
  next: string | null;
}

export interface PageOptions {
  /** 1–500. @defaultValue 50 */
  limit?: number;
  /** `next` of the previous page. */
  cursor?: string;
}

export interface CurrentRound {
  chain: string;
  totalDiff: number;
  /** account → credited difficulty */
  accounts: Record<string, number>;
}

export interface Service {
  kind: string;
  id: string;
  chain: string;
  state: 'up' | 'draining';
  version: string;
  startedAt: number;
  load: number;
  loadFigures: Record<string, number>;
  endpoints: Record<string, string>;
}
