import type { ServerStat } from '@hashwire/confgen';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type BlockRecord, readWorkers, reporterKeys } from '@hashwire/reporter';
import type { SimMiners } from '@hashwire/testkit';
import { formatHashRate } from './sim.js';
import { type Registry, readServices } from './status.js';

/** What one status line shows: the miners' own view, and what the pool wrote to Redis. */
export interface PoolSample {
  elapsedMs: number;
  miners: number;
  connected: number;
  authorized: number;
  hashesPerSecond: number;
  /** Shares the miners were told were accepted, and rejected as stale (21) or otherwise. */
  accepted: number;
  stale: number;
  rejected: number;
  /** Accepted shares the reporters credited (lifetime worker counters in Redis). */
  credited: number;
  /** Block records the jobmanagers wrote, by state. */
  blocksFound: number;
  blocksAccepted: number;
  /** Valid, but a sibling at the same height reached the daemons first (common on regtest). */
  blocksOrphaned: number;
  blocksRejected: number;
  height: number;
}

export interface SampleSources {
  miners: readonly SimMiners[];
  redis: RedisClient;
  keys: KeyBuilder;
  chain: string;
  height: () => Promise<number>;
  startedAt: number;
}

/** The miners' counters, summed over every group. */
export function sampleMiners(
  miners: readonly SimMiners[],
): Pick<
  PoolSample,
  'miners' | 'connected' | 'authorized' | 'hashesPerSecond' | 'accepted' | 'stale' | 'rejected'
> {
  const sum = {
    miners: 0,
    connected: 0,
    authorized: 0,
    hashesPerSecond: 0,
    accepted: 0,
    stale: 0,
    rejected: 0,
  };
  for (const group of miners) {
    const t = group.stats().total;
    sum.miners += t.workers;
    sum.connected += t.connected;
    sum.authorized += t.authorized;
    sum.hashesPerSecond += t.hashesPerSecond;
    sum.accepted += t.accepted;
    sum.stale += t.stale;
    sum.rejected += t.rejected - t.stale;
  }
  return sum;
}

/** Credited shares and block records from Redis, the height from the daemon. */
export async function samplePool(sources: SampleSources): Promise<PoolSample> {
  const k = reporterKeys(sources.keys, sources.chain);
  const [workers, records, height] = await Promise.all([
    readWorkers(sources.redis, sources.keys, sources.chain),
    sources.redis.hvals(k.blocks),
    sources.height(),
  ]);
  let credited = 0;
  for (const counters of workers.values()) credited += counters.accepted;
  let blocksAccepted = 0;
  let blocksOrphaned = 0;
  let blocksRejected = 0;
  for (const text of records) {
    const state = (JSON.parse(text) as BlockRecord).state;
    if (state === 'accepted' || state === 'confirmed') blocksAccepted++;
    else if (state === 'orphaned') blocksOrphaned++;
    else if (state === 'rejected') blocksRejected++;
  }
  return {
    elapsedMs: Date.now() - sources.startedAt,
    ...sampleMiners(sources.miners),
    credited,
    blocksFound: records.length,
    blocksAccepted,
    blocksOrphaned,
    blocksRejected,
    height,
  };
}

function shares(s: PoolSample): string {
  const other = s.rejected > 0 ? `, ${s.rejected} other rejected` : '';
  return `shares ${s.accepted} accepted, ${s.stale} stale${other}`;
}

function blocks(s: PoolSample): string {
  const orphaned = s.blocksOrphaned > 0 ? `, ${s.blocksOrphaned} orphaned (a sibling won the race)` : '';
  const rejected = s.blocksRejected > 0 ? `, ${s.blocksRejected} rejected` : '';
  return `blocks ${s.blocksFound} found, ${s.blocksAccepted} accepted${orphaned}${rejected}`;
}

/** `[12s] miners 20/20 · 4.00 kH/s · shares 31 accepted, 1 stale · credited 28 · blocks 31 found, 31 accepted · height 564` */
export function formatStatus(s: PoolSample): string {
  return [
    `[${Math.round(s.elapsedMs / 1000)}s] miners ${s.authorized}/${s.miners}`,
    formatHashRate(s.hashesPerSecond),
    shares(s),
    `credited ${s.credited}`,
    blocks(s),
    `height ${s.height}`,
  ].join(' · ');
}

/** The last line: what the run did in total. */
export function formatSummary(s: PoolSample, leftBehind: string): string {
  return [
    `demo done after ${(s.elapsedMs / 1000).toFixed(0)} s: ${s.miners} miners`,
    shares(s),
    `credited ${s.credited}`,
    blocks(s),
    `height ${s.height}`,
    leftBehind,
  ].join(' · ');
}

export interface WhereToLookInput {
  registry: Registry;
  haproxyPort: number;
  /** `host:port` of HAProxy's stats page, if it has one. */
  haproxyStats: string | undefined;
  haproxySocket: string;
  /** A regtest address for the "your miner" line. */
  example: string;
  logDir: string;
  redisUrl: string;
  /** The demo's pool config: `hashwire drain --config` finds the admin token through it. */
  configFile: string;
  adminTokenFile: string;
  chain: string;
}

/** The "where to look" lines: the public stratum address, HAProxy, each service's HTTP face, logs, Redis. */
export async function whereToLook(input: WhereToLookInput): Promise<string[]> {
  const services = await readServices(input.registry);
  const width = Math.max(...services.map((s) => s.id.length));
  const stratum = services.filter((s) => s.kind === 'stratum');
  const rpcServers = services.filter((s) => s.endpoints.rpc !== undefined);
  const k = reporterKeys(input.registry.keys, input.chain);
  const redisPort = new URL(input.redisUrl).port;
  return [
    `miners      stratum+tcp://127.0.0.1:${input.haproxyPort} (HAProxy, balance source over ${stratum.map((s) => `${s.id} ${s.endpoints.stratum ?? '?'}`).join(', ')})`,
    `your miner  any scrypt miner there, username a regtest address (e.g. ${input.example}.rig1), any password; every share is a regtest block`,
    `haproxy     ${input.haproxyStats ? `stats page http://${input.haproxyStats}/ · ` : ''}runtime API ${input.haproxySocket} (e.g. echo "show stat" | socat - ${input.haproxySocket})`,
    'services    /healthz, /stats and /metrics of each:',
    ...services.map((s) => `  ${s.id.padEnd(width)}  ${s.endpoints.http}/stats  ${s.endpoints.http}/metrics`),
    `security    RPC CURVE (encrypted, pool keys only): ${rpcServers.map((s) => `${s.id} ${s.curveKey ? 'on' : 'OFF'}`).join(', ')} · POST /drain needs the token in ${input.adminTokenFile}`,
    `status      ./hashwire status --redis ${input.redisUrl} · drain one (it is started again at once): ./hashwire drain <id> --config ${input.configFile}`,
    `logs        ${input.logDir}/<id>.log (haproxy.cfg and pool.json beside them)`,
    `redis       ${input.redisUrl}, keys under ${input.registry.keys.prefix} (blocks: redis-cli -p ${redisPort} hgetall '${k.blocks}')`,
  ];
}

/** `haproxy: 20 miner connections through 127.0.0.1:3333: stratum-…-1 11, stratum-…-2 9` */
export function formatHaproxySessions(stats: readonly ServerStat[], port: number): string {
  const servers = stats
    .filter((s) => s.name !== 'BACKEND' && s.name !== 'FRONTEND')
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const total = servers.reduce((sum, s) => sum + s.totalSessions, 0);
  return `haproxy: ${total} miner connections through 127.0.0.1:${port}: ${servers.map((s) => `${s.name} ${s.totalSessions}`).join(', ')}`;
}
