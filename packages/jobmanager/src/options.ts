import {
  type ChainParams,
  type CoinbasePayout,
  type DaemonClientOptions,
  type SoloFee,
  addressToScript,
  getChainParams,
} from '@hashwire/chain';
import { type Logger, type StatsdOptions, packageVersion } from '@hashwire/core';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type ServiceCurve, checkServiceCurve, requireCurveOffLoopback } from '@hashwire/rpc';

/** A bad jobmanager configuration: the message names the field and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export interface PayoutOption {
  address: string;
  /** Exact amount in satoshis; at most one payout leaves it out and gets the rest. */
  valueSat?: number;
}

export interface JobManagerOptions {
  /** Unique id of this jobmanager, e.g. `jm-ltc-1`. */
  id: string;
  /** Coin and network, e.g. `{ coin: 'litecoin', network: 'regtest' }`. */
  coin: string;
  network: string;
  /** Pool chain id used in keys, jobs and leases. @defaultValue `${coin}-${network}` */
  chain?: string;
  /** Daemons of the chain, tried in order; blocks go to all of them. */
  daemons: DaemonClientOptions[];
  /** Where the block reward goes (validated at start). */
  payouts: PayoutOption[];
  /** @defaultValue '/hashwire/' */
  poolTag?: string;
  /**
   * The chain pays SOLO (`payments.scheme: "solo"`): every job also carries the coinbase end cut
   * around the finder's output, and a block is built paying the finder's address, less
   * `feePercent` (at most two decimals) to `feeAddress`. `payouts` stays the coinbase of work sent
   * by stratum servers that do not know SOLO.
   */
  solo?: { feePercent?: number; feeAddress?: string };
  /** @defaultValue 4 */
  extranonce1Size?: number;
  /** @defaultValue 4 */
  extranonce2Size?: number;
  redis: RedisClient;
  keys: KeyBuilder;
  /** @defaultValue [28000, 28999] */
  rpcPortRange?: readonly [number, number];
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** RPC heartbeat (stratum clients use the same). @defaultValue 1000 */
  heartbeatIntervalMs?: number;
  /** Leader lease lifetime: a dead leader's standby takes over within about this long. @defaultValue 2000 */
  leaseTtlMs?: number;
  /** Registration TTL in Redis. @defaultValue 60000 */
  serviceTtlMs?: number;
  /** @defaultValue 500 */
  pollIntervalMs?: number;
  /** The leader's fresh template (new transactions, same block) this long after its last job. @defaultValue 30000 */
  refreshIntervalMs?: number;
  /**
   * Unhealthy (`/healthz` 503, `healthy: false` to stratum servers) when no daemon gave a
   * template for this long: daemon errors ("not connected", initial block download, warm-up)
   * count, not only unreachable daemons. A template is asked for at least every half of it.
   * @defaultValue 20000
   */
  templateGraceMs?: number;
  /** How long a job (and its template) stays in Redis for block submission. @defaultValue 900000 */
  jobTtlMs?: number;
  /**
   * Listen on the chain's blocknotify channel in Redis (`keys.blocknotifyChannel(chain)`); the
   * daemons' `-blocknotify` publishes there (`blocknotifyCommand`). @defaultValue false
   */
  blocknotify?: boolean;
  /**
   * Hold a `getblocktemplate` long poll open at the daemons (each holds one daemon RPC thread).
   * Off, new blocks come from blocknotify, ZMQ and the poll. @defaultValue true
   */
  longpoll?: boolean;
  /** ZMQ `hashblock` endpoints of daemons built with ZMQ (bitcoind). */
  zmqHashblock?: string[];
  /** @defaultValue this package's version, with the git commit when run from a checkout */
  version?: string;
  /** HTTP `/healthz`, `/stats`, `/metrics`: the first free port of this range. @defaultValue [29000, 29999] */
  httpPortRange?: readonly [number, number];
  /**
   * Address of the HTTP `/healthz`, `/stats`, `/metrics` (and `POST /drain`) server; loopback
   * unless told otherwise (pool config `http.host`). @defaultValue '127.0.0.1'
   */
  httpHost?: string;
  /** statsd mirror of the metrics (hot-shots). */
  statsd?: StatsdOptions;
  /** Where it logs (health changes, block records waiting for Redis). @defaultValue silent */
  logger?: Logger;
  /** What `POST /drain` on the status server does (the bin: the same as SIGTERM). No `/drain` without it. */
  onDrain?: () => void;
  /** The token `POST /drain` must carry (`Authorization: Bearer`); without it `/drain` is refused. */
  adminToken?: string;
  /**
   * This jobmanager's CURVE key pair and the client keys it lets in (the pool's service keys);
   * its public key is published in the registry as `curveKey`, and it calls other jobmanagers
   * with it. Required when `host` is not loopback.
   */
  curve?: ServiceCurve;
}

export interface ResolvedOptions
  extends Required<
    Omit<
      JobManagerOptions,
      'payouts' | 'zmqHashblock' | 'statsd' | 'onDrain' | 'adminToken' | 'curve' | 'logger' | 'solo'
    >
  > {
  solo?: SoloFee;
  statsd?: StatsdOptions;
  curve?: ServiceCurve;
  params: ChainParams;
  payouts: CoinbasePayout[];
  zmqHashblock: string[];
}

function positiveInteger(field: string, value: number | undefined, fallback: number, max = 2 ** 31): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0 || v > max)
    throw new ConfigError(field, `must be an integer from 1 to ${max}, got ${v}`);
  return v;
}

/** Checks everything before anything starts; throws ConfigError naming the first bad field. */
export function resolveOptions(options: JobManagerOptions): ResolvedOptions {
  if (!options.id || !/^[A-Za-z0-9._-]{1,64}$/.test(options.id)) {
    throw new ConfigError('id', `must be 1–64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(options.id)}`);
  }
  let params: ChainParams;
  try {
    params = getChainParams(options.coin, options.network);
  } catch (error) {
    throw new ConfigError('coin/network', (error as Error).message);
  }
  if (!Array.isArray(options.daemons) || options.daemons.length === 0) {
    throw new ConfigError('daemons', 'at least one daemon is needed (url and credentials or cookie file)');
  }
  if (!Array.isArray(options.payouts) || options.payouts.length === 0) {
    throw new ConfigError('payouts', 'at least one payout address is needed');
  }
  let remainders = 0;
  const payouts = options.payouts.map((p, i): CoinbasePayout => {
    try {
      addressToScript(p.address, params);
    } catch (error) {
      throw new ConfigError(`payouts[${i}].address`, (error as Error).message);
    }
    if (p.valueSat === undefined) {
      remainders++;
      return { address: p.address };
    }
    if (!Number.isSafeInteger(p.valueSat) || p.valueSat <= 0) {
      throw new ConfigError(
        `payouts[${i}].valueSat`,
        `must be a positive integer of satoshis, got ${p.valueSat}`,
      );
    }
    return { address: p.address, valueSat: p.valueSat };
  });
  if (remainders > 1)
    throw new ConfigError('payouts', 'at most one payout may leave out valueSat (it gets the rest)');
  const solo = options.solo === undefined ? undefined : resolveSolo(options.solo, params);
  const host = options.host ?? '127.0.0.1';
  // These name the field themselves (`curve is required: host … is not loopback`).
  const curve = options.curve ? checkServiceCurve('curve', options.curve) : undefined;
  requireCurveOffLoopback('host', host, 'curve', curve);
  return {
    id: options.id,
    coin: options.coin,
    network: options.network,
    chain: options.chain ?? `${options.coin}-${options.network}`,
    daemons: options.daemons,
    payouts,
    params,
    poolTag: options.poolTag ?? '/hashwire/',
    ...(solo && { solo }),
    extranonce1Size: positiveInteger('extranonce1Size', options.extranonce1Size, 4, 16),
    extranonce2Size: positiveInteger('extranonce2Size', options.extranonce2Size, 4, 16),
    redis: options.redis,
    keys: options.keys,
    rpcPortRange: options.rpcPortRange ?? [28000, 28999],
    host,
    ...(curve ? { curve } : {}),
    heartbeatIntervalMs: positiveInteger('heartbeatIntervalMs', options.heartbeatIntervalMs, 1000),
    leaseTtlMs: positiveInteger('leaseTtlMs', options.leaseTtlMs, 2000),
    serviceTtlMs: positiveInteger('serviceTtlMs', options.serviceTtlMs, 60_000),
    pollIntervalMs: positiveInteger('pollIntervalMs', options.pollIntervalMs, 500),
    refreshIntervalMs: positiveInteger('refreshIntervalMs', options.refreshIntervalMs, 30_000),
    templateGraceMs: positiveInteger('templateGraceMs', options.templateGraceMs, 20_000),
    jobTtlMs: positiveInteger('jobTtlMs', options.jobTtlMs, 900_000),
    blocknotify: options.blocknotify ?? false,
    longpoll: options.longpoll ?? true,
    zmqHashblock: options.zmqHashblock ?? [],
    version: options.version ?? packageVersion(import.meta.url),
    httpPortRange: options.httpPortRange ?? [29000, 29999],
    httpHost: options.httpHost ?? '127.0.0.1',
    ...(options.statsd ? { statsd: options.statsd } : {}),
  };
}

/** The SOLO fee in basis points, and its address checked for the chain. */
function resolveSolo(solo: { feePercent?: number; feeAddress?: string }, params: ChainParams): SoloFee {
  const percent = solo.feePercent ?? 0;
  const feeBasisPoints = Math.round(percent * 100);
  if (
    typeof percent !== 'number' ||
    !(percent >= 0 && percent <= 100) ||
    Math.abs(feeBasisPoints - percent * 100) > 1e-6
  ) {
    throw new ConfigError('solo.feePercent', `must be 0 to 100 with at most two decimals, got ${percent}`);
  }
  if (solo.feeAddress === undefined) {
    if (feeBasisPoints > 0)
      throw new ConfigError(
        'solo.feeAddress',
        'a SOLO pool fee is paid in the coinbase: give the fee address',
      );
    return { feeBasisPoints };
  }
  try {
    addressToScript(solo.feeAddress, params);
  } catch (error) {
    throw new ConfigError('solo.feeAddress', (error as Error).message);
  }
  return { feeBasisPoints, feeAddress: solo.feeAddress };
}
