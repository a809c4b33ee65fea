#!/usr/bin/env node
// Thin entry: the services' bin scaffold (`runServiceBin`: JSON config from
// HASHWIRE_PAYOUTS_CONFIG or a file path as the first argument, Redis PING, one `ready` line on
// stdout with its HTTP address, logs on stderr, a bad config exits 1 with one line naming the
// field) around the payer of one chain (`createPayerProcess`). SIGTERM/SIGINT (or `POST /drain`):
// a run under way finishes, the lease is given up, the payer leaves discovery; then exit 0.
// HASHWIRE_PAYOUTS_KILL_AT=before-send|after-send|during-record makes the process SIGKILL
// itself at that point of its first payment: the crash tests' fault (nothing else can stop a
// process exactly between sendmany's answer and the write of its txid).
import type { DaemonClientOptions } from '@hashwire/chain';
import { type LogLevel, StartupError, type StatsdOptions, runServiceBin } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, openServiceRedis } from '@hashwire/registry';
import { type PayerProcess, createPayerProcess } from './payer-process.js';
import type { FaultPoint } from './payer.js';
import { type PaymentSettings, PaymentSettingsError, resolvePaymentSettings } from './settings.js';

const FAULTS: readonly FaultPoint[] = ['before-send', 'after-send', 'during-record'];

/** The JSON config (what `hashwire run payouts` hands over; see `payoutsConfig` in the CLI). */
interface PayoutsFileOptions {
  id: string;
  chain: string;
  /** @defaultValue 'litecoin' */
  coin?: string;
  /** @defaultValue 'regtest' */
  network?: string;
  /** The daemon whose wallet pays: `{ url, cookieFile? | user?, password? }`. */
  wallet: DaemonClientOptions;
  /** `chains[].payments` of the pool config, without `walletDaemon`, `wallet` and `leaseTtlMs`. */
  payments?: unknown;
  rewardAddresses?: string[];
  leaseTtlMs?: number;
  maturityPollMs?: number;
  eventsMaxLen?: number;
  redisUrl?: string;
  redis?: unknown;
  /** @defaultValue 'hw:' */
  keyPrefix?: string;
  httpPortRange?: [number, number];
  httpHost?: string;
  serviceTtlMs?: number;
  adminTokenFile?: string;
  statsd?: StatsdOptions;
  logLevel?: LogLevel;
}

let settings: PaymentSettings;
let killAt: FaultPoint | undefined;

runServiceBin<PayoutsFileOptions, RedisClient, PayerProcess>({
  name: 'payouts',
  envVar: 'HASHWIRE_PAYOUTS_CONFIG',
  requiredText: ['id', 'chain'],
  check(config) {
    const wallet = config.wallet as DaemonClientOptions | undefined;
    if (!wallet || typeof wallet !== 'object' || typeof wallet.url !== 'string')
      throw new StartupError(
        'wallet must be { url, cookieFile? | user?, password? }: the daemon whose wallet pays',
      );
    try {
      settings = resolvePaymentSettings(config.payments ?? {});
    } catch (error) {
      if (error instanceof PaymentSettingsError) throw new StartupError(error.message);
      throw error;
    }
    if (config.rewardAddresses !== undefined && !Array.isArray(config.rewardAddresses))
      throw new StartupError('rewardAddresses must be an array of addresses');
    killAt = process.env.HASHWIRE_PAYOUTS_KILL_AT as FaultPoint | undefined;
    if (killAt !== undefined && !FAULTS.includes(killAt))
      throw new StartupError(`HASHWIRE_PAYOUTS_KILL_AT must be one of ${FAULTS.join(', ')}`);
  },
  openRedis: openServiceRedis,
  async create(config, { redis, logger, secrets, requestStop }) {
    const fault = killAt;
    return createPayerProcess({
      redis,
      keys: createKeyBuilder({ prefix: config.keyPrefix ?? 'hw:' }),
      id: config.id,
      chain: config.chain,
      coin: config.coin ?? 'litecoin',
      network: config.network ?? 'regtest',
      wallet: config.wallet,
      settings,
      ...(config.rewardAddresses ? { rewardAddresses: config.rewardAddresses } : {}),
      ...(typeof config.leaseTtlMs === 'number' ? { leaseTtlMs: config.leaseTtlMs } : {}),
      ...(typeof config.maturityPollMs === 'number' ? { maturityPollMs: config.maturityPollMs } : {}),
      ...(typeof config.eventsMaxLen === 'number' ? { eventsMaxLen: config.eventsMaxLen } : {}),
      ...(config.httpPortRange ? { httpPortRange: config.httpPortRange } : {}),
      ...(typeof config.httpHost === 'string' ? { httpHost: config.httpHost } : {}),
      ...(typeof config.serviceTtlMs === 'number' ? { serviceTtlMs: config.serviceTtlMs } : {}),
      ...(config.statsd ? { statsd: config.statsd } : {}),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
      onDrain: requestStop,
      logger,
      ...(fault
        ? {
            faults: (point: FaultPoint) => {
              if (point !== fault) return;
              logger.warn({ point }, 'payouts: killing myself (HASHWIRE_PAYOUTS_KILL_AT)');
              process.kill(process.pid, 'SIGKILL');
            },
          }
        : {}),
    });
  },
  ready: (payer, config) => ({ chain: config.chain, http: payer.http }),
});
