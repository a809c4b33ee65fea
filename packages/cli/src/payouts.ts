import { parseArgs } from 'node:util';
import { DaemonClient, type DaemonClientOptions } from '@hashwire/chain';
import { ConfigError, type LogLevel, type PoolConfig, createLogger, loadPoolConfig } from '@hashwire/core';
import {
  type AuditReport,
  type BlockShareOut,
  type PayResult,
  type PaymentBatch,
  auditPayouts,
  createPayer,
  createPayerProcess,
  payoutKeys,
  resolvePaymentSettings,
  satToCoin,
} from '@hashwire/payouts';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis } from '@hashwire/registry';
import { payoutsConfig, poolRedis } from './pool.js';

/** A bad `hashwire payouts` command line (one line, exit code 2). */
export class PayoutsUsageError extends Error {
  override readonly name = 'PayoutsUsageError';
}

export const payoutsUsage = `usage: hashwire payouts <status|audit|pay-now|run> --config FILE [--chain ID] [--json]

Payments of one chain of the pool config (the first chain with a payments section unless --chain):
  status    balances, payments due, the open batch, recent batches, blocks shared out or waiting
  audit     proves the books to the satoshi: each balance = its ledger; balances + paid = matured
            rewards; the miners' part = rewards − fees − rounding remainders; each sent batch's
            wallet transaction sends exactly its amounts. Exit 1 when anything does not add up
  pay-now   asks the running payer to pay now, or (no payer running) makes one run here
            (share out matured blocks, then pay); prints what happened
  run       runs the chain's payer (the process that shares out and pays), until SIGTERM

  --config FILE   the pool config
  --chain ID      the chain (default: the first with payments)
  --json          the figures as JSON`;

interface Target {
  pool: PoolConfig;
  chainId: string;
  config: Record<string, unknown>;
}

function target(values: { config?: string | undefined; chain?: string | undefined }): Target {
  if (!values.config) throw new PayoutsUsageError('hashwire payouts: --config FILE is required');
  const pool = loadPoolConfig({ file: values.config });
  const chain = values.chain
    ? pool.chains.find((c) => c.id === values.chain)
    : pool.chains.find((c) => c.payments !== undefined);
  if (!chain) {
    throw new PayoutsUsageError(
      values.chain
        ? `hashwire payouts: no chain ${values.chain} in the config (chains: ${pool.chains.map((c) => c.id).join(', ')})`
        : 'hashwire payouts: no chain of the config has a payments section (chains[].payments)',
    );
  }
  const config = payoutsConfig(pool, chain);
  if (!config)
    throw new PayoutsUsageError(
      `hashwire payouts: chain ${chain.id} has no payments section (chains[].payments)`,
    );
  return { pool, chainId: chain.id, config };
}

export async function payoutsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${payoutsUsage}\n`);
    return sub ? 0 : 2;
  }
  if (!['status', 'audit', 'pay-now', 'run'].includes(sub)) {
    throw new PayoutsUsageError(
      `hashwire payouts: unknown command "${sub}"; one of status, audit, pay-now, run`,
    );
  }
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string' }, chain: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  let t: Target;
  try {
    t = target(values);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`hashwire payouts: the config is not valid:\n${error.message}\n`);
    return 1;
  }
  const redis = connectRedis(poolRedis(t.pool), 'hashwire-payouts');
  const keyBuilder = createKeyBuilder({ prefix: t.pool.redis.keyPrefix });
  const keys = payoutKeys(keyBuilder, t.chainId);
  const wallet = new DaemonClient(t.config.wallet as DaemonClientOptions);
  const call = <T>(method: string, params?: unknown[]) => wallet.call<T>(method, params ?? []);
  try {
    await redis.ping();
    if (sub === 'audit') {
      const report = await auditPayouts(redis, keys, call);
      process.stdout.write(
        values.json ? `${JSON.stringify(report, null, 2)}\n` : auditText(t.chainId, report),
      );
      return report.ok ? 0 : 1;
    }
    if (sub === 'status') {
      const status = await readStatus(redis, keys, t);
      process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : statusText(status));
      return 0;
    }
    const settings = resolvePaymentSettings(t.config.payments);
    const logger = createLogger({
      name: 'payouts',
      level: t.pool.log.level as LogLevel,
      base: { chain: t.chainId },
      destination: process.stderr,
    });
    const common = {
      redis,
      keys: keyBuilder,
      chain: t.chainId,
      coin: t.config.coin as string,
      network: t.config.network as string,
      wallet,
      settings,
      rewardAddresses: t.config.rewardAddresses as string[],
      leaseTtlMs: t.config.leaseTtlMs as number,
      maturityPollMs: t.config.maturityPollMs as number,
      eventsMaxLen: t.config.eventsMaxLen as number,
      logger,
    };
    if (sub === 'run') {
      // The same process as `hashwire run payouts` (discovery, /metrics), under the chain's first instance id.
      let stop = () => {};
      const stopped = new Promise<void>((resolve) => {
        stop = resolve;
      });
      const payer = createPayerProcess({
        ...common,
        id: t.config.id as string,
        httpPortRange: t.config.httpPortRange as [number, number],
        httpHost: t.config.httpHost as string,
        serviceTtlMs: t.config.serviceTtlMs as number,
        onDrain: () => stop(),
      });
      await payer.start();
      process.stdout.write(
        `${JSON.stringify({ ready: true, id: t.config.id, chain: t.chainId, http: payer.http })}\n`,
      );
      process.once('SIGTERM', () => stop());
      process.once('SIGINT', () => stop());
      await stopped;
      await payer.close();
      return 0;
    }
    const payer = createPayer({ ...common, id: `pay-now-${process.pid}`, schedule: false });
    return await payNow(redis, keys, payer, values.json === true);
  } finally {
    wallet.close();
    redis.disconnect();
  }
}

async function payNow(
  redis: ReturnType<typeof connectRedis>,
  keys: ReturnType<typeof payoutKeys>,
  payer: ReturnType<typeof createPayer>,
  json: boolean,
): Promise<number> {
  const holder = await redis.get(keys.lease);
  if (holder) {
    // A payer runs: ask it (it looks every second) and follow its next batch.
    const before = await redis.zrevrange(keys.batchIndex, 0, 0);
    await redis.set(keys.payNow, String(Date.now()), 'PX', 60_000);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await redis.exists(keys.payNow)) === 1) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if ((await redis.exists(keys.payNow)) === 1) {
      process.stderr.write(
        `hashwire payouts pay-now: the payer ${payerIdOf(holder)} did not take the request within 60 s\n`,
      );
      return 1;
    }
    const after = await redis.zrevrange(keys.batchIndex, 0, 0);
    const text = after[0] && after[0] !== before[0] ? await redis.hget(keys.batches, after[0]) : null;
    const line = text
      ? batchLine(JSON.parse(text) as PaymentBatch)
      : 'no new batch (nothing due, or see `hashwire payouts status` and the events)';
    process.stdout.write(
      json
        ? `${JSON.stringify({ askedPayer: payerIdOf(holder), batch: text ? JSON.parse(text) : null })}\n`
        : `asked payer ${payerIdOf(holder)}: ${line}\n`,
    );
    return 0;
  }
  await payer.start();
  try {
    await payer.elected(30_000);
    const result = await payer.runOnce({ pay: true });
    process.stdout.write(
      json ? `${JSON.stringify(result, null, 2)}\n` : payText(result.pay as PayResult, result.maturity),
    );
    return result.pay?.outcome === 'failed' || result.pay?.outcome === 'held' ? 1 : 0;
  } finally {
    await payer.close();
  }
}

function batchLine(b: PaymentBatch): string {
  const what = `${b.payments.length} accounts, ${satToCoin(BigInt(b.totalSat))}`;
  if (b.state === 'sent') return `batch ${b.id} sent: ${what}, txid ${b.txid}`;
  if (b.state === 'failed') return `batch ${b.id} failed: ${b.error}`;
  return `batch ${b.id} open (intent recorded, not yet seen in the wallet): ${what}`;
}

function payText(
  pay: PayResult,
  maturity: { credited: string[]; voided: string[]; waiting: number },
): string {
  const lines = [
    `blocks: ${maturity.credited.length} shared out, ${maturity.voided.length} void, ${maturity.waiting} waiting`,
    `payment: ${pay.outcome}${pay.batchId ? ` batch ${pay.batchId}` : ''}${pay.txid ? ` txid ${pay.txid}` : ''}${pay.paidSat ? ` ${satToCoin(BigInt(pay.paidSat))} to ${pay.accounts} accounts` : ''}${pay.error ? `: ${pay.error}` : ''}`,
  ];
  for (const h of pay.held) lines.push(`held: ${h.account}: ${h.reason}`);
  return `${lines.join('\n')}\n`;
}

interface PayoutsStatus {
  chain: string;
  scheme: string;
  payer: string | null;
  accounts: number;
  balancesSat: string;
  due: { account: string; sat: string }[];
  held: Record<string, string>;
  openBatch: string | null;
  batches: PaymentBatch[];
  blocks: { credited: number; void: number; waiting: string[] };
}

async function readStatus(
  redis: ReturnType<typeof connectRedis>,
  keys: ReturnType<typeof payoutKeys>,
  t: Target,
): Promise<PayoutsStatus> {
  const settings = resolvePaymentSettings(t.config.payments);
  const [balances, held, open, holder, batchIds, shared, blockHashes] = await Promise.all([
    redis.hgetall(keys.balances),
    redis.hgetall(keys.held),
    redis.get(keys.open),
    redis.get(keys.lease),
    redis.zrevrange(keys.batchIndex, 0, 9),
    redis.hgetall(keys.shared),
    redis.hkeys(keys.blocks),
  ]);
  let total = 0n;
  const due: PayoutsStatus['due'] = [];
  for (const [account, sat] of Object.entries(balances)) {
    total += BigInt(sat);
    if (BigInt(sat) >= BigInt(settings.minimumPayoutSat) && !account.startsWith('@'))
      due.push({ account, sat });
  }
  const batches = batchIds.length > 0 ? await redis.hmget(keys.batches, ...batchIds) : [];
  const states = Object.values(shared).map((s) => (JSON.parse(s) as BlockShareOut).state);
  return {
    chain: t.chainId,
    scheme: settings.scheme,
    payer: holder ? (payerIdOf(holder) ?? null) : null,
    accounts: Object.keys(balances).length,
    balancesSat: total.toString(),
    due,
    held,
    openBatch: open,
    batches: batches.filter((b): b is string => b !== null).map((b) => JSON.parse(b) as PaymentBatch),
    blocks: {
      credited: states.filter((s) => s === 'credited').length,
      void: states.filter((s) => s === 'void').length,
      waiting: blockHashes.filter((h) => !(h in shared)),
    },
  };
}

function statusText(s: PayoutsStatus): string {
  const lines = [
    `chain ${s.chain}: ${s.scheme}; payer ${s.payer ?? 'none running'}`,
    `balances: ${s.accounts} accounts, ${satToCoin(BigInt(s.balancesSat))} in all; ${s.due.length} due`,
    `blocks: ${s.blocks.credited} shared out, ${s.blocks.void} void (orphaned, rejected, stale), ${s.blocks.waiting.length} not yet (maturing or pending)`,
    `open batch: ${s.openBatch ?? 'none'}`,
  ];
  for (const [account, reason] of Object.entries(s.held)) lines.push(`held: ${account}: ${reason}`);
  for (const b of s.batches) lines.push(batchLine(b));
  return `${lines.join('\n')}\n`;
}

function auditText(chain: string, r: AuditReport): string {
  const c = (sat: string) => satToCoin(BigInt(sat)).padStart(20);
  const lines = [
    `payouts audit of ${chain}: ${r.ok ? 'OK, the books balance to the satoshi' : 'FAILED'}`,
    `matured rewards      ${c(r.rewardsSat)}  (${r.blocks.credited} blocks shared out, ${r.blocks.void} void)`,
    `  fees               ${c(r.feesSat)}`,
    `  remainders         ${c(r.remaindersSat)}  (rounding, to the fee account)`,
    `  credited to miners ${c(r.creditedToMinersSat)}`,
    `balances             ${c(r.balancesSat)}  (${r.accounts} accounts, fee account included)`,
    `paid                 ${c(r.paidSat)}  (${r.batches.sent} batches sent, ${r.batches.failed} failed, open: ${r.batches.open ?? 'none'})`,
    `balances + paid = rewards: ${c((BigInt(r.balancesSat) + BigInt(r.paidSat)).toString())} = ${c(r.rewardsSat).trim()}`,
    `ledger: ${r.ledger.entries} entries; credits ${r.ledger.credit}, fees ${r.ledger.fee}, remainders ${r.ledger.remainder}, debits ${r.ledger.debit} (sat)`,
  ];
  if (r.walletChecked !== undefined)
    lines.push(
      `wallet: ${r.walletChecked} of ${r.batches.sent} sent batches match their transaction exactly`,
    );
  for (const p of r.problems) lines.push(`PROBLEM: ${p}`);
  return `${lines.join('\n')}\n`;
}

/** The payer's instance id from the lease value `<id>#<process>|<epoch>`. */
function payerIdOf(lease: string): string {
  return (lease.split('|')[0] ?? '').split('#')[0] ?? '';
}
