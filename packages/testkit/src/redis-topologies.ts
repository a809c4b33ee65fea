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
  /** Seed nodes for `new Cluster(nodes)`. */
  nodes: { host: string; port: number }[];
  servers: RedisServer[];
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` nodes (no replicas) on free ports, slots assigned and
 * `cluster_state:ok` on every node before it returns — for proving multi-key scripts keep
 * their keys in one hash slot.
 */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<RedisClusterServer> {
  const masters = options.masters ?? 3;
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(
        await startRedis({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      );
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    for (const s of servers) {
      await waitFor(
        async () => {
          const { stdout } = await run('redis-cli', ['-p', String(s.port), 'cluster', 'info']);
          return stdout.includes('cluster_state:ok');
        },
        { timeoutMs: 15_000, what: `redis cluster node ${s.port} to report cluster_state:ok` },
      );
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    servers,
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
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
