import {
  type Logger,
  type Metrics,
  type StatsdOptions,
  type StatusServer,
  createLogger,
  createMetrics,
  isWildcardHost,
  packageVersion,
  startStatusServer,
} from '@hashwire/core';
import { type KeyBuilder, PortRange, createKeyBuilder } from '@hashwire/protocol';
import { type ServiceRegistration, registerService } from '@hashwire/registry';
import { indexLedger } from './ledger-index.js';
import { type Payer, type PayerOptions, type PayerStats, createPayer } from './payer-service.js';

export interface PayerProcessOptions
  extends Omit<PayerOptions, 'keys' | 'logger' | 'onRun' | 'onLeadership'> {
  /** The instance id, e.g. `payouts-ltc-1`: its discovery entry and the holder of the lease. */
  id: string;
  /** @defaultValue createKeyBuilder() */
  keys?: KeyBuilder;
  /** @defaultValue createLogger({ name: 'payouts' }) */
  logger?: Logger;
  /** @defaultValue [29000, 29999] */
  httpPortRange?: readonly [number, number];
  /** @defaultValue '127.0.0.1' */
  httpHost?: string;
  /** The host registered when `httpHost` is a wildcard. @defaultValue '127.0.0.1' */
  advertiseHost?: string;
  /** Discovery entry lifetime without a refresh. @defaultValue 60_000 (the registry's) */
  serviceTtlMs?: number;
  /** The token `POST /drain` needs; without one it is refused. */
  adminToken?: string;
  /** Called by `POST /drain` (the bin stops the process the way SIGTERM does). */
  onDrain?: () => void;
  statsd?: StatsdOptions;
  /** How often the owed balances and held accounts are read for the metrics. @defaultValue 10_000 */
  owedPollMs?: number;
  /** @defaultValue the package version */
  version?: string;
}

/** A payer as the pool runs it: the payer, its HTTP face and its entry in discovery. */
export interface PayerProcess {
  readonly payer: Payer;
  readonly metrics: Metrics;
  /** `http://host:port` of `/healthz`, `/stats`, `/metrics` (after `start`). */
  readonly http: string;
  /** Campaigns for the lease, opens the HTTP port and registers (kind `payouts`). */
  start(): Promise<void>;
  /** Planned stop: `draining` in discovery, the running payment finishes, the lease is given up, then it leaves discovery. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The payer of one chain as a pool process (`hashwire up`, Circus, systemd): the same
 * `/healthz`, `/stats` and `/metrics` as the other services, and an entry in discovery (kind
 * `payouts`, load figure `leader`: 1 on the process holding the chain's payer lease), so
 * `hashwire status` and `GET /v1/services` show it and which one pays.
 */
export function createPayerProcess(options: PayerProcessOptions): PayerProcess {
  const { id, chain, redis } = options;
  const keys = options.keys ?? createKeyBuilder();
  const logger = options.logger ?? createLogger({ name: 'payouts', base: { id, chain } });
  const version = options.version ?? packageVersion(import.meta.url);
  const metrics = createMetrics({
    service: 'payouts',
    id,
    chain,
    version,
    ...(options.statsd
      ? {
          statsd: {
            ...options.statsd,
            onError: (error: Error) => logger.debug({ err: error }, 'payouts: statsd send failed'),
          },
        }
      : {}),
  });
  metrics.draining(false);
  metrics.leader(false, 0);
  let registration: ServiceRegistration | null = null;
  let http: StatusServer | null = null;
  let owedTimer: NodeJS.Timeout | null = null;
  let owedReading: Promise<void> | null = null;
  let draining: Promise<void> | null = null;
  let closing: Promise<void> | null = null;

  const readOwed = async () => {
    const [balances, held] = await Promise.all([
      redis.hgetall(payer.keys.balances),
      redis.hlen(payer.keys.held),
    ]);
    let owed = 0n;
    for (const [account, sat] of Object.entries(balances)) if (!account.startsWith('@')) owed += BigInt(sat);
    metrics.payoutOwed(Number(owed), held);
  };
  const refreshOwed = () => {
    owedReading ??= readOwed()
      .catch((error: unknown) => {
        metrics.redisError();
        logger.warn({ err: error }, 'payouts: reading the balances for the metrics failed');
      })
      .finally(() => {
        owedReading = null;
      });
    return owedReading;
  };

  const onRun = (run: NonNullable<PayerStats['lastRun']>) => {
    const atSeconds = Date.now() / 1000;
    if (run.error !== undefined) metrics.payoutRun('error', 0, atSeconds);
    else if (run.pay) {
      const paid = run.pay.outcome === 'sent' || run.pay.outcome === 'reconciled';
      metrics.payoutRun(run.pay.outcome, paid ? Number(run.pay.paidSat ?? 0) : 0, atSeconds);
    }
    void refreshOwed();
  };

  const payer = createPayer({
    ...options,
    keys,
    logger,
    onRun,
    onLeadership: (leading, epoch) => {
      metrics.leader(leading, epoch);
      // `hashwire status` shows the new payer at once, not at the next refresh.
      void registration?.update({}).catch(() => {});
    },
  });

  const process: PayerProcess = {
    payer,
    metrics,
    get http() {
      return http?.url ?? '';
    },
    async start() {
      // Ledgers written before the scripts kept the read API's indexes get them now.
      const indexed = await indexLedger(redis, payer.keys);
      if (indexed > 0) logger.info({ entries: indexed }, 'payouts: ledger entries indexed for the read API');
      await payer.start();
      const host = options.httpHost ?? '127.0.0.1';
      http = await startStatusServer({
        portRange: options.httpPortRange ?? PortRange.http,
        host,
        advertiseHost: isWildcardHost(host) ? (options.advertiseHost ?? '127.0.0.1') : host,
        metrics,
        stats: () => ({ id, chain, version, ...payer.stats() }),
        health: async () => {
          try {
            await redis.ping();
            return { ok: true };
          } catch (error) {
            return { ok: false, reasons: [`redis unreachable: ${(error as Error).message}`] };
          }
        },
        ...(options.onDrain ? { onDrain: options.onDrain } : {}),
        ...(options.adminToken ? { adminToken: options.adminToken } : {}),
      });
      registration = await registerService({
        redis,
        keys,
        kind: 'payouts',
        id,
        http: http.url,
        chain,
        version,
        measureLoad: () => ({ leader: payer.stats().leader ? 1 : 0 }),
        ...(options.serviceTtlMs ? { ttlMs: options.serviceTtlMs } : {}),
        onError: (error) => {
          metrics.redisError();
          logger.warn({ err: error }, 'payouts: registry refresh failed');
        },
      });
      await refreshOwed();
      owedTimer = setInterval(refreshOwed, options.owedPollMs ?? 10_000);
      owedTimer.unref();
      logger.info({ http: http.url }, 'payouts: up');
    },
    drain() {
      draining ??= (async () => {
        metrics.draining(true);
        await registration?.update({ state: 'draining' }).catch(() => {});
        if (owedTimer) clearInterval(owedTimer);
        owedTimer = null;
        // A run under way finishes (a sent batch gets its txid recorded), then the lease goes.
        await payer.close();
        await owedReading;
        await registration?.close().catch(() => {});
        registration = null;
        logger.info('payouts: stopped; the lease is free for another payer');
      })();
      return draining;
    },
    close() {
      closing ??= (async () => {
        await process.drain();
        await http?.close();
        await metrics.close();
      })();
      return closing;
    },
  };
  return process;
}
