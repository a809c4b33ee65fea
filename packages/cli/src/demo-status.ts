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
  /** Block candidates among the accepted shares, as the miners counted them. */
  candidates: number;
  /**
   * Every block candidate the pool took (the miners' accepted shares that met the network
   * target), answered or not; then what the jobmanagers' records say of them, by state.
   */
  blocksFound: number;
  blocksAccepted: number;
  /** Valid, but built on a parent that was no longer the tip when submitted (stale work). */
  blocksStale: number;
  /** Valid, but a sibling at the same height reached the daemons first (a lost race). */
  blocksOrphaned: number;
  blocksRejected: number;
  /** Found, but no jobmanager gave a verdict (none answered, or still waiting). */
  blocksUnanswered: number;
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
  'miners' | 'connected' | 'authorized' | 'hashesPerSecond' | 'accepted' | 'stale' | 'rejected' | 'candidates'
> {
  const sum = {
    miners: 0,
    connected: 0,
    authorized: 0,
    hashesPerSecond: 0,
    accepted: 0,
    stale: 0,
    rejected: 0,
    candidates: 0,
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
    sum.candidates += t.blockCandidatesAccepted;
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
  const states: Record<string, number> = {};
  for (const text of records) {
    const state = (JSON.parse(text) as BlockRecord).state;
    states[state] = (states[state] ?? 0) + 1;
  }
  const miners = sampleMiners(sources.miners);
  return {
    elapsedMs: Date.now() - sources.startedAt,
    ...miners,
    credited,
    ...blockSummary(states, miners.candidates),
    height,
  };
}

/**
 * The block counts from the records' states and the candidates the miners found: a candidate
 * without a verdict (no record, or still `submitted`) is unanswered, never left out.
 */
export function blockSummary(
  byState: Readonly<Record<string, number>>,
  candidates: number,
): Pick<
  PoolSample,
  'blocksFound' | 'blocksAccepted' | 'blocksStale' | 'blocksOrphaned' | 'blocksRejected' | 'blocksUnanswered'
> {
  const accepted = (byState.accepted ?? 0) + (byState.confirmed ?? 0);
  const stale = byState.stale ?? 0;
  const orphaned = byState.orphaned ?? 0;
  const rejected = byState.rejected ?? 0;
  const records = Object.values(byState).reduce((a, b) => a + b, 0);
  const found = Math.max(candidates, records);
  return {
    blocksFound: found,
    blocksAccepted: accepted,
    blocksStale: stale,
    blocksOrphaned: orphaned,
    blocksRejected: rejected,
    blocksUnanswered: found - accepted - stale - orphaned - rejected,
  };
}

function shares(s: PoolSample): string {
  const other = s.rejected > 0 ? `, ${s.rejected} other rejected` : '';
  return `shares ${s.accepted} accepted, ${s.stale} stale${other}`;
}

function blocks(s: PoolSample): string {
  return [
    `blocks ${s.blocksFound} found`,
    `${s.blocksAccepted} accepted`,
    ...(s.blocksStale > 0 ? [`${s.blocksStale} stale (their parent was no longer the tip)`] : []),
    ...(s.blocksOrphaned > 0 ? [`${s.blocksOrphaned} orphaned (a sibling won the race)`] : []),
    ...(s.blocksRejected > 0 ? [`${s.blocksRejected} rejected`] : []),
    ...(s.blocksUnanswered > 0 ? [`${s.blocksUnanswered} unanswered (no jobmanager gave a verdict)`] : []),
  ].join(', ');
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
  /** `http://host:port` of the API at HAProxy. */
  apiUrl: string;
  /** `host:port` of HAProxy's stats page, if it has one. */
  haproxyStats: string | undefined;
  haproxySocket: string;
  /** A regtest address for the "your miner" line. */
  example: string;
  logDir: string;
  /** The demo's Redis: a URL, or a Cluster's nodes (masters first) and how many of them are replicas. */
  redis: { url: string } | { cluster: { host: string; port: number }[]; replicas: number };
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
  const { redis } = input;
  // redis-cli -c follows the Cluster's redirections to the node that holds the key.
  const redisCli =
    'url' in redis ? `redis-cli -p ${new URL(redis.url).port}` : `redis-cli -c -p ${redis.cluster[0]?.port}`;
  const redisWhere =
    'url' in redis
      ? redis.url
      : `Redis Cluster ${redis.cluster.map((n) => `${n.host}:${n.port}`).join(', ')} (${redis.cluster.length - redis.replicas} masters, ${redis.replicas} replicas)`;
  // `status --redis URL` reads one Redis; a Cluster is read through the pool config's redis.cluster.
  const statusArgs = 'url' in redis ? `--redis ${redis.url}` : `--config ${input.configFile}`;
  return [
    `miners      stratum+tcp://127.0.0.1:${input.haproxyPort} (HAProxy, balance source over ${stratum.map((s) => `${s.id} ${s.endpoints.stratum ?? '?'}`).join(', ')})`,
    `your miner  any scrypt miner there, username a regtest address (e.g. ${input.example}.rig1), any password; every share is a regtest block`,
    `api         ${input.apiUrl} (HAProxy over ${services
      .filter((s) => s.kind === 'api')
      .map((s) => `${s.id} ${s.endpoints.api ?? '?'}`)
      .join(
        ', ',
      )}): ${input.apiUrl}/v1/pool, ${input.apiUrl}/v1/chains/${input.chain}/accounts/<address>, ${input.apiUrl}/v1/openapi.json`,
    `dashboard   ${input.apiUrl}/ (the pool) · ${input.apiUrl}/account/<address> (a miner) · ${input.apiUrl}/operator (drain buttons with an admin token: ./hashwire tokens create --kind admin --name NAME --config ${input.configFile})`,
    `haproxy     ${input.haproxyStats ? `stats page http://${input.haproxyStats}/ · ` : ''}runtime API ${input.haproxySocket} (e.g. echo "show stat" | socat - ${input.haproxySocket})`,
    'services    /healthz, /stats and /metrics of each:',
    ...services.map((s) => `  ${s.id.padEnd(width)}  ${s.endpoints.http}/stats  ${s.endpoints.http}/metrics`),
    `security    RPC CURVE (encrypted, pool keys only): ${rpcServers.map((s) => `${s.id} ${s.curveKey ? 'on' : 'OFF'}`).join(', ')} · POST /drain needs the token in ${input.adminTokenFile}`,
    `status      ./hashwire status ${statusArgs} · drain one (it is started again at once): ./hashwire drain <id> --config ${input.configFile}`,
    `logs        ${input.logDir}/<id>.log (haproxy.cfg and pool.json beside them)`,
    `redis       ${redisWhere}, keys under ${input.registry.keys.prefix} (blocks: ${redisCli} hgetall '${k.blocks}')`,
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

/**
 * Watches the chain while the miners mine: a height that has not risen for `stallMs` means
 * the pool stopped producing blocks, whatever its services report.
 */
export class StallWatch {
  private height = Number.NEGATIVE_INFINITY;
  private since = 0;

  constructor(private readonly stallMs: number) {}

  /** What stalled, in words, or null while the chain moves. */
  observe(height: number, now: number): string | null {
    if (height > this.height) {
      this.height = height;
      this.since = now;
      return null;
    }
    const stalledMs = now - this.since;
    if (stalledMs < this.stallMs) return null;
    return `the chain stalled: height stayed at ${height} for ${Math.round(stalledMs / 1000)} s while the miners mined`;
  }
}
