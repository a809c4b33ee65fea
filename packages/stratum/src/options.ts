import type { ChainParams } from '@hashwire/chain';
import { type Job, type KeyBuilder, PortRange, type RpcMethods, type Share } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type LimitOptions, type ResolvedLimitOptions, resolveLimitOptions } from './limits.js';
import { type ResolvedVardiffOptions, type VardiffOptions, resolveVardiffOptions } from './vardiff.js';

/** Where jobs come from: the jobmanager push in production, a template-built job in tests. */
export interface JobSource {
  /** Calls `cb` for every new job; returns a function that stops the calls. */
  onJob(cb: (job: Job) => void): (() => void) | undefined;
  /** The newest job, or null before the first one. */
  current(): Job | null;
}

/** Where accepted shares go: the share spool, or anything that acknowledges a write. */
export interface ShareSink {
  /** Resolves once the share is durably held; only then is the miner told `true`. */
  append(share: Share): Promise<void>;
  close?(): void | Promise<void>;
}

export type SubmitBlockRequest = RpcMethods['jm.submitBlock']['req'];
export type SubmitBlockReply = RpcMethods['jm.submitBlock']['rep'];

/** Where block candidates go: `jm.submitBlock` to the jobmanager that issued the job. */
export interface BlockSink {
  submitBlock(request: SubmitBlockRequest): Promise<SubmitBlockReply>;
}

/** The subset of a pino logger the server uses; pass a pino logger or child logger as is. */
export interface StratumLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentStratumLogger: StratumLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface DrainOptions {
  /**
   * Sessions sent `client.reconnect` per wave.
   * @defaultValue 500
   */
  waveSize?: number;
  /**
   * Pause between two waves, so the other servers are not hit by every miner at once.
   * @defaultValue 1000
   */
  waveIntervalMs?: number;
  /**
   * After the last wave, sessions still connected this long are closed.
   * @defaultValue 30000
   */
  graceMs?: number;
  /**
   * Where `client.reconnect` points; without it the params are empty (reconnect to the
   * same address, i.e. HAProxy, which picks another server).
   */
  reconnectTo?: { host: string; port: number; waitSeconds?: number };
}

/** What happens to miners while the pool has no real work (`suspend()`: no coin daemon answers). */
export interface DaemonLossOptions {
  /**
   * A backup pool: every session is sent `client.reconnect` with it. Without one, sessions get
   * a `client.show_message` saying why and are disconnected, so the miners' own failover
   * pools take over.
   */
  reconnectTo?: { host: string; port: number; waitSeconds?: number };
  /**
   * After `client.reconnect`, sessions still connected this long are closed.
   * @defaultValue 10000
   */
  graceMs?: number;
}

export interface StratumServerOptions {
  /** This instance's id (logs, slot lease owner, session records). */
  id: string;
  /** Pool chain id as jobs carry it (`Job.chain`), e.g. `ltc-main`. */
  chain: string;
  /** Consensus parameters: PoW algorithm, share difficulty convention, addresses. */
  params: ChainParams;
  /** @defaultValue '0.0.0.0' */
  host?: string;
  /**
   * One port, 0 for any free one, or a range whose first free port is bound.
   * @defaultValue [23000, 23999]
   */
  port?: number | readonly [number, number];
  /** Shared Redis connection (the caller owns it). */
  redis: RedisClient;
  keys: KeyBuilder;
  jobs: JobSource;
  /**
   * Share sink; by default a ShareSpool in `spoolDir`.
   */
  shareSink?: ShareSink;
  /** Directory of the default share spool. Required unless `shareSink` is given. */
  spoolDir?: string;
  /** Options of the default spool (see ShareSpoolOptions). */
  spool?: { batchIntervalMs?: number; batchMaxShares?: number; sync?: boolean };
  blockSink: BlockSink;
  /**
   * extranonce1 bytes (2-byte slot prefix + counter); must match the jobmanager's coinbase.
   * @defaultValue 4
   */
  extranonce1Size?: number;
  /** @defaultValue 4 */
  extranonce2Size?: number;
  /**
   * BIP310 version bits the pool lets miners roll.
   * @defaultValue 0x1fffe000
   */
  versionMask?: number;
  /**
   * Seconds a submitted ntime may run ahead of the job's ntime (it may never go below it).
   * @defaultValue 7200
   */
  ntimeMaxAheadSeconds?: number;
  vardiff?: VardiffOptions;
  limits?: LimitOptions;
  drain?: DrainOptions;
  daemonLoss?: DaemonLossOptions;
  /**
   * Addresses allowed to send a PROXY protocol header (HAProxy), as CIDRs.
   * @defaultValue [] (nobody)
   */
  trustedProxies?: readonly string[];
  /**
   * How long a disconnected session can be resumed.
   * @defaultValue 600000
   */
  sessionTtlMs?: number;
  /**
   * Also spool rejected shares (stale, duplicate, lowdiff, invalid) for per-worker statistics;
   * they are answered at once, not after the write.
   * @defaultValue true
   */
  spoolRejectedShares?: boolean;
  /**
   * The chain pays SOLO (`payments.scheme: "solo"`): a connection mines for one payout address
   * (a worker naming another address than the first one is refused at authorize). Jobs that
   * carry `solo` get each session a coinbase paying its own address, and one address per
   * connection, whatever this says.
   * @defaultValue false
   */
  solo?: boolean;
  /**
   * How often timeouts, idle vardiff and bans are checked.
   * @defaultValue 1000
   */
  sweepIntervalMs?: number;
  logger?: StratumLogger;
}

export interface ResolvedStratumOptions {
  id: string;
  chain: string;
  params: ChainParams;
  host: string;
  ports: [number, number];
  extranonce1Size: number;
  extranonce2Size: number;
  versionMask: number;
  ntimeMaxAheadSeconds: number;
  vardiff: ResolvedVardiffOptions;
  limits: ResolvedLimitOptions;
  drain: Required<Omit<DrainOptions, 'reconnectTo'>> & Pick<DrainOptions, 'reconnectTo'>;
  daemonLoss: Required<Omit<DaemonLossOptions, 'reconnectTo'>> & Pick<DaemonLossOptions, 'reconnectTo'>;
  trustedProxies: readonly string[];
  sessionTtlMs: number;
  spoolRejectedShares: boolean;
  solo: boolean;
  sweepIntervalMs: number;
  logger: StratumLogger;
}

function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new TypeError(`${field} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function positiveInt(field: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${field} must be a positive integer, got ${value}`);
  }
  return value;
}

function reconnectTarget(
  field: string,
  to: DaemonLossOptions['reconnectTo'],
): DaemonLossOptions['reconnectTo'] | undefined {
  if (to === undefined) return undefined;
  if (typeof to !== 'object' || to === null || typeof to.host !== 'string' || to.host === '') {
    throw new TypeError(`${field}.host must be a non-empty host name or address`);
  }
  if (!Number.isInteger(to.port) || to.port < 1 || to.port > 65535) {
    throw new RangeError(`${field}.port must be a port from 1 to 65535, got ${to.port}`);
  }
  const wait = to.waitSeconds;
  if (wait !== undefined && (!Number.isInteger(wait) || wait < 0)) {
    throw new RangeError(`${field}.waitSeconds must be a whole number of seconds (0 or more), got ${wait}`);
  }
  return { host: to.host, port: to.port, ...(wait !== undefined && { waitSeconds: wait }) };
}

/** Defaults filled in and every value checked; the caller's object is not touched. */
export function resolveStratumOptions(options: StratumServerOptions): ResolvedStratumOptions {
  if (typeof options.id !== 'string' || options.id === '')
    throw new TypeError('id must be a non-empty string');
  if (typeof options.chain !== 'string' || options.chain === '') {
    throw new TypeError('chain must be a non-empty string (the chain id jobs carry, e.g. ltc-main)');
  }
  const port = options.port ?? PortRange.stratum;
  const ports: [number, number] = typeof port === 'number' ? [port, port] : [port[0], port[1]];
  if (!ports.every((p) => Number.isInteger(p) && p >= 0 && p <= 65535) || ports[0] > ports[1]) {
    throw new RangeError(
      `port must be 0, a port, or a [first, last] range of ports, got ${JSON.stringify(port)}`,
    );
  }
  const extranonce2Size = positiveInt('extranonce2Size', options.extranonce2Size ?? 4);
  if (extranonce2Size > 16)
    throw new RangeError(`extranonce2Size must be at most 16, got ${extranonce2Size}`);
  const versionMask = options.versionMask ?? 0x1fffe000;
  if (!Number.isInteger(versionMask) || versionMask < 0 || versionMask > 0xffffffff) {
    throw new RangeError(`versionMask must be a 32-bit unsigned integer, got ${versionMask}`);
  }
  const drain = options.drain ?? {};
  const daemonLoss = options.daemonLoss ?? {};
  const backup = reconnectTarget('daemonLoss.reconnectTo', daemonLoss.reconnectTo);
  return {
    id: options.id,
    chain: options.chain,
    params: options.params,
    host: options.host ?? '0.0.0.0',
    ports,
    extranonce1Size: positiveInt('extranonce1Size', options.extranonce1Size ?? 4),
    extranonce2Size,
    versionMask: versionMask >>> 0,
    ntimeMaxAheadSeconds: positiveInt('ntimeMaxAheadSeconds', options.ntimeMaxAheadSeconds ?? 7200),
    vardiff: resolveVardiffOptions(options.vardiff),
    limits: resolveLimitOptions(options.limits),
    drain: {
      waveSize: positiveInt('drain.waveSize', drain.waveSize ?? 500),
      waveIntervalMs: positiveInt('drain.waveIntervalMs', drain.waveIntervalMs ?? 1000),
      graceMs: positiveInt('drain.graceMs', drain.graceMs ?? 30_000),
      ...(drain.reconnectTo && { reconnectTo: drain.reconnectTo }),
    },
    daemonLoss: {
      graceMs: positiveInt('daemonLoss.graceMs', daemonLoss.graceMs ?? 10_000),
      ...(backup && { reconnectTo: backup }),
    },
    trustedProxies: [...(options.trustedProxies ?? [])],
    sessionTtlMs: positiveInt('sessionTtlMs', options.sessionTtlMs ?? 600_000),
    spoolRejectedShares: options.spoolRejectedShares ?? true,
    solo: checkBoolean('solo', options.solo ?? false),
    sweepIntervalMs: positiveInt('sweepIntervalMs', options.sweepIntervalMs ?? 1000),
    logger: options.logger ?? silentStratumLogger,
  };
}
