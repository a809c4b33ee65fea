import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { getFreePort } from './ports.js';
import { makeTempDir, spawnManaged } from './process.js';
import { type RedisServer, startRedis } from './redis.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export interface RedisClusterServer {
  /** Seed nodes for `new Cluster(nodes)`: every node, masters and replicas. */
  nodes: { host: string; port: number }[];
  /** Every node started, in start order (the first `masters` were created as masters). */
  servers: RedisServer[];
  /** The nodes that serve slots as masters now, as the cluster itself says. */
  masters(): Promise<RedisServer[]>;
  /** The node serving `key`'s hash slot as master now. */
  masterFor(key: string): Promise<RedisServer>;
  /**
   * SIGKILLs `master` (no shutdown, no final write) and resolves once one of its replicas
   * serves its slots and every live node says `cluster_state:ok`.
   */
  killMaster(
    master: RedisServer,
    options?: { timeoutMs?: number },
  ): Promise<{ promoted: RedisServer; failoverMs: number }>;
  /**
   * Resolves once every node still running says `cluster_state:ok` (all slots served), e.g.
   * after a node's `restart()`, which may have made the cluster fail it over.
   */
  healthy(options?: { timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** @defaultValue 3 */
  masters?: number;
  /** Replicas per master; each is synced before `startRedisCluster` returns. @defaultValue 0 */
  replicas?: number;
  /** `cluster-node-timeout`: how long a silent master takes to be failed over. @defaultValue 2000 */
  nodeTimeoutMs?: number;
  /**
   * An append-only file on every node, so a node `restart()`ed comes back with its data (a
   * master restarted empty would hand its replicas an empty data set). @defaultValue false
   */
  appendonly?: boolean;
}

/**
 * A real Redis Cluster of `masters` nodes with `replicas` replicas each, on free ports, slots
 * assigned, replicas in sync and `cluster_state:ok` on every node before it returns — for
 * proving multi-key scripts keep their keys in one hash slot, and for failing a master over.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterServer> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 0;
  if (!Number.isInteger(masters) || masters < 3)
    throw new Error(`masters must be an integer >= 3, got ${masters}`);
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new Error(`replicas must be an integer >= 0, got ${replicas}`);
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      servers.push(
        await startRedis({
          appendonly: options.appendonly ?? false,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            String(options.nodeTimeoutMs ?? 2000),
          ],
        }),
      );
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...addresses,
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    await waitClusterOk(servers, 30_000);
    if (replicas > 0) {
      await waitFor(
        async () => {
          const nodes = await clusterNodes(servers[0] as RedisServer);
          const replicaLinks = await Promise.all(
            nodes.filter((n) => n.flags.includes('slave')).map((n) => replicationInfo(n.port)),
          );
          const synced = replicaLinks.filter((info) => info.includes('master_link_status:up')).length;
          return synced === masters * replicas;
        },
        {
          timeoutMs: 30_000,
          what: `${masters * replicas} redis cluster replicas to be in sync with their masters`,
        },
      );
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
  const live = (): RedisServer[] => servers.filter((s) => !killed.has(s));
  const killed = new Set<RedisServer>();
  const byPort = (port: number): RedisServer => {
    const server = servers.find((s) => s.port === port);
    if (!server) throw new Error(`redis cluster names a node on port ${port} that the testkit did not start`);
    return server;
  };
  const liveMasters = async (): Promise<ClusterNode[]> => {
    const nodes = await clusterNodes(live()[0] as RedisServer);
    return nodes.filter((n) => n.flags.includes('master') && !n.flags.includes('fail') && n.slots.length > 0);
  };
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    servers,
    async masters() {
      return (await liveMasters()).map((n) => byPort(n.port));
    },
    async masterFor(key) {
      const { stdout } = await run('redis-cli', [
        '-p',
        String((live()[0] as RedisServer).port),
        'cluster',
        'keyslot',
        key,
      ]);
      const slot = Number(stdout.trim());
      const owner = (await liveMasters()).find((n) =>
        n.slots.some(([from, to]) => slot >= from && slot <= to),
      );
      if (!owner) throw new Error(`no live master serves slot ${slot} (key ${key})`);
      return byPort(owner.port);
    },
    async killMaster(master, killOptions = {}) {
      const before = (await liveMasters()).find((n) => n.port === master.port);
      if (!before) throw new Error(`redis node ${master.port} is not a live master`);
      const started = Date.now();
      killed.add(master);
      process.kill(master.pid, 'SIGKILL');
      const timeoutMs = killOptions.timeoutMs ?? 60_000;
      const promoted = await waitFor(
        async () => {
          const now = await liveMasters();
          const heir = now.find(
            (n) => n.port !== master.port && n.slots.some(([from]) => from === before.slots[0]?.[0]),
          );
          return heir ? byPort(heir.port) : undefined;
        },
        { timeoutMs, what: `a replica of redis master ${master.port} to take over its slots` },
      );
      await waitClusterOk(live(), timeoutMs);
      return { promoted, failoverMs: Date.now() - started };
    },
    async healthy(healthyOptions: { timeoutMs?: number } = {}) {
      await waitClusterOk(live(), healthyOptions.timeoutMs ?? 60_000);
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

interface ClusterNode {
  port: number;
  flags: string[];
  /** Inclusive slot ranges. */
  slots: [number, number][];
}

/** `CLUSTER NODES` as one node sees it. */
async function clusterNodes(server: RedisServer): Promise<ClusterNode[]> {
  const { stdout } = await run('redis-cli', ['-p', String(server.port), 'cluster', 'nodes']);
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [, address = '', flags = '', , , , , , ...slots] = line.trim().split(' ');
      return {
        port: Number(address.split('@')[0]?.split(':')[1]),
        flags: flags.split(','),
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [from, to = from] = range.split('-').map(Number) as [number, number?];
            return [from, to] as [number, number];
          }),
      };
    });
}

async function replicationInfo(port: number): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'info', 'replication']);
  return stdout;
}

async function waitClusterOk(servers: RedisServer[], timeoutMs: number): Promise<void> {
  for (const s of servers) {
    await waitFor(
      async () => {
        const { stdout } = await run('redis-cli', ['-p', String(s.port), 'cluster', 'info']);
        return stdout.includes('cluster_state:ok');
      },
      { timeoutMs, what: `redis cluster node ${s.port} to report cluster_state:ok` },
    );
  }
}

export interface RedisSentinelServer {
  master: RedisServer;
  /** For ioredis: `{ sentinels, name }`. */
  sentinels: { host: string; port: number }[];
  name: string;
  stop(): Promise<void>;
}

/** A master and one redis-sentinel monitoring it, on free ports. */
export async function startRedisSentinel(options: { name?: string } = {}): Promise<RedisSentinelServer> {
  const name = options.name ?? 'hashwire';
  const master = await startRedis();
  const dir = await makeTempDir('sentinel');
  const port = await getFreePort();
  const conf = path.join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${name} 127.0.0.1 ${master.port} 1\n`,
  );
  let monitoring: () => void = () => {};
  const monitored = new Promise<void>((resolve) => {
    monitoring = resolve;
  });
  const sentinel = await spawnManaged(`sentinel:${port}`, 'redis-server', [conf, '--sentinel'], {
    logFile: path.join(dir, 'sentinel.log'),
    onLine: (line) => {
      if (line.includes(`+monitor master ${name}`)) monitoring();
    },
  });
  const outcome = await Promise.race([
    monitored.then(() => 'ok' as const),
    sentinel.exited.then(() => 'exited' as const),
  ]);
  if (outcome !== 'ok') {
    await master.stop();
    throw new Error(`redis sentinel on port ${port} exited during start:\n${await sentinel.logTail(20)}`);
  }
  return {
    master,
    sentinels: [{ host: '127.0.0.1', port }],
    name,
    async stop() {
      await sentinel.stop();
      await master.stop();
    },
  };
}
