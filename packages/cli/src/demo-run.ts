import { writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadPoolConfig } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import {
  type LitecoinNode,
  type LitecoinRegtest,
  type SimMiners,
  getFreePort,
  liveProcesses,
  startLitecoinRegtest,
  startSimMiners,
  waitFor,
} from '@hashwire/testkit';
import {
  type DemoRedisKind,
  type DemoRedisServer,
  checkBinsBuilt,
  demoPoolConfig,
  portFree,
  startDemoRedis,
} from './demo-services.js';
import {
  type PoolSample,
  StallWatch,
  formatHaproxySessions,
  formatStatus,
  formatSummary,
  sampleMiners,
  samplePool,
  whereToLook,
} from './demo-status.js';
import { generatePoolKeys } from './keys.js';
import { formatHashRate } from './sim.js';
import { pidAlive } from './supervisor.js';
import { type RunningPool, startPool } from './up.js';

export interface DemoOptions {
  /** Stop after mining this long (counted from when the miners are up). @defaultValue until `signal` aborts */
  durationMs?: number;
  /** Between two status lines. @defaultValue 5_000 */
  intervalMs?: number;
  /** Aborting stops the demo (the command wires SIGINT and SIGTERM to it). */
  signal?: AbortSignal;
  /** Receives each output line. @defaultValue written to stdout */
  write?: (line: string) => void;
  /**
   * The Redis the demo starts: one `redis-server`, or a Redis Cluster of 3 masters with one
   * replica each (the pool config then gives `redis.cluster`). @defaultValue 'single'
   */
  redis?: DemoRedisKind;
  /**
   * A height that does not rise for this long while the miners mine stops the demo as failed
   * (exit 1, saying why). The demo finds about two blocks a second. @defaultValue 60_000
   */
  stallMs?: number;
}

export interface DemoResult {
  /** False when the pool could not start, a process died on its own, or the chain stalled. */
  ok: boolean;
  /** Why the chain was found stalled (the demo then stopped), or null. */
  stalled: string | null;
  /** Counters at the end, after the stratum servers handed their spools to the reporters. */
  final: PoolSample | undefined;
  /** Where the services' logs are (kept after the demo). */
  logDir: string;
  /** Every process the demo supervised (HAProxy and the services). */
  services: { id: string; pid: number }[];
  /** Processes still running after the teardown (empty unless something refused to stop). */
  leftBehind: { name: string; pid: number }[];
}

const CHAIN = 'litecoin-regtest';
const MINERS = 20;
/** The public stratum port, as in a real deployment. */
const HAPROXY_PORT = 3333;
/** The API at HAProxy, as `api.bind` has it by default. */
const API_PORT = 8080;
/** All miners together; about a fifth of what two cores can scrypt, so the machine stays usable. */
const HASHES_PER_SECOND = 4_000;
/**
 * About 2048 hashes per share, so about two shares a second in all. Every share also meets the
 * regtest network target, so each accepted share is a block too.
 */
const SHARE_DIFF = 2 ** -5;
const READY_TIMEOUT_MS = 30_000;

/** What the daemon says when asked for a template (why a stalled chain stalled, often). */
async function templateProblem(node: LitecoinNode): Promise<string> {
  try {
    await node.rpc.call('getblocktemplate', [{ rules: ['mweb', 'segwit'] }]);
    const peers = await node.rpc.call<number>('getconnectioncount');
    return `node0 gives templates (${peers} peers): see the services' logs and /healthz`;
  } catch (error) {
    return `node0 getblocktemplate: ${(error as Error).message}`;
  }
}

/** Everything started so far, so the teardown stops exactly that. */
interface Demo {
  redisServer?: DemoRedisServer;
  regtest?: LitecoinRegtest;
  redis?: RedisClient;
  pool?: RunningPool;
  miners?: SimMiners;
}

const took = (since: number) => ` in ${((performance.now() - since) / 1000).toFixed(1)} s`;

/** Thrown between start steps once the demo was asked to stop. */
class Stopped extends Error {}

/**
 * Starts the pool step by step, prints a status line every `intervalMs` until `durationMs` passed
 * or `signal` aborted (or a process died), then stops everything it started in order: miners,
 * stratum servers (they drain and hand their spools to the reporters), reporters, jobmanagers,
 * HAProxy, Redis and litecoind.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const intervalMs = options.intervalMs ?? 5_000;
  const redisKind = options.redis ?? 'single';
  const halt = new AbortController();
  const stop = AbortSignal.any(options.signal ? [options.signal, halt.signal] : [halt.signal]);
  const checkStop = () => {
    if (stop.aborted) throw new Stopped();
  };

  write('hashwire demo: a whole pool on this machine, litecoin regtest, embedded defaults');
  checkBinsBuilt();
  const logDir = await mkdtemp(join(tmpdir(), 'hashwire-demo-'));
  write(`logs: ${logDir}`);

  const demo: Demo = {};
  const startedAt = performance.now();
  let ok = true;
  let stalled: string | null = null;
  let last: PoolSample | undefined;
  let miningSince = Date.now();
  let miningMs = 0;
  let sample: (() => Promise<PoolSample>) | undefined;
  let haproxyPort = HAPROXY_PORT;
  let apiPort = API_PORT;
  let backend = 'stratum';
  const keys = createKeyBuilder();
  try {
    // 1. Redis and the daemons.
    let stepStarted = performance.now();
    const [redisStart, regtestStart] = await Promise.allSettled([
      startDemoRedis(redisKind),
      startLitecoinRegtest({ nodes: 2 }),
    ]);
    if (redisStart.status === 'fulfilled') demo.redisServer = redisStart.value;
    if (regtestStart.status === 'fulfilled') demo.regtest = regtestStart.value;
    if (redisStart.status === 'rejected') throw redisStart.reason;
    if (regtestStart.status === 'rejected') throw regtestStart.reason;
    const redisServer = demo.redisServer as DemoRedisServer;
    const regtest = demo.regtest as LitecoinRegtest;
    const [node0, node1] = regtest.nodes as [LitecoinNode, LitecoinNode];
    const redisTarget = redisServer.target;
    const redis = connectRedis('url' in redisTarget ? redisTarget.url : redisTarget, 'hashwire-demo');
    demo.redis = redis;
    write(`[1/4] ${redisServer.description}${took(stepStarted)}`);
    write(
      `[2/4] litecoind regtest x2, MWEB active, height ${regtest.startHeight}: node0 ${node0.rpcUrl} (pid ${node0.pid}), node1 ${node1.rpcUrl} (pid ${node1.pid})${took(stepStarted)}`,
    );

    // 2. The pool, from a config file of its own, as `hashwire up` runs one.
    checkStop();
    stepStarted = performance.now();
    const payout = await node0.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const account = await node1.rpc.call<string>('getnewaddress', ['', 'bech32']);
    if (!(await portFree('127.0.0.1', HAPROXY_PORT))) {
      haproxyPort = await getFreePort();
      write(
        `127.0.0.1:${HAPROXY_PORT} is taken (another demo?): HAProxy listens on 127.0.0.1:${haproxyPort} instead`,
      );
    }
    if (!(await portFree('127.0.0.1', API_PORT))) {
      apiPort = await getFreePort();
      write(`127.0.0.1:${API_PORT} is taken: HAProxy serves the api on 127.0.0.1:${apiPort} instead`);
    }
    const configFile = join(logDir, 'pool.json');
    const keyDir = join(logDir, 'keys');
    const input = demoPoolConfig({
      keys: generatePoolKeys(keyDir),
      redis: redisTarget,
      daemons: regtest.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
      payout,
      dir: logDir,
      haproxyPort,
      haproxyStatsPort: await getFreePort(),
      apiPort,
      shareDiff: SHARE_DIFF,
    });
    await writeFile(configFile, `${JSON.stringify(input, null, 2)}\n`);
    const poolConfig = loadPoolConfig({ file: configFile });
    demo.pool = await startPool({
      pool: poolConfig,
      configArgs: ['--config', configFile],
      logDir,
      write: (line) => write(`  ${line}`),
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    const pool = demo.pool;
    const haproxy = pool.haproxy;
    if (!haproxy) throw new Error('the demo config runs HAProxy, but it did not start');
    write(
      `[3/4] pool: HAProxy 127.0.0.1:${haproxyPort}, 2 jobmanagers, 2 reporters, 2 stratum servers, 1 api instance (config ${configFile}); RPC with CURVE on, keys in ${keyDir}${took(stepStarted)}`,
    );

    // 3. Sim miners through HAProxy, once both stratum servers are in its backend. Each miner
    //    connects from its own loopback address, so `balance source` spreads them.
    checkStop();
    stepStarted = performance.now();
    backend = poolConfig.haproxy.backend;
    await waitFor(
      async () => {
        checkStop();
        const up = (await haproxy.runtime.serverStats(backend)).filter((s) => s.status.startsWith('UP'));
        const api = (await haproxy.runtime.serverStats(poolConfig.api.backend)).filter((s) =>
          s.status.startsWith('UP'),
        );
        return up.length === 2 && api.length === 1;
      },
      { timeoutMs: 20_000, what: 'both stratum servers and the api instance UP in HAProxy' },
    );
    demo.miners = await startSimMiners({
      host: '127.0.0.1',
      port: haproxyPort,
      workers: MINERS,
      username: (i) => `${account}.sim${i}`,
      localAddress: (i) => `127.0.0.${10 + i}`,
      algorithm: 'scrypt',
      hashesPerSecondLimit: HASHES_PER_SECOND,
    });
    write(
      `[4/4] ${MINERS} sim miners as ${account}.simN through HAProxy 127.0.0.1:${haproxyPort} (from 127.0.0.10-${9 + MINERS}), difficulty ${SHARE_DIFF} (vardiff off), scrypt capped at ${formatHashRate(HASHES_PER_SECOND)}${took(stepStarted)}`,
    );

    const example = await node1.rpc.call<string>('getnewaddress', ['', 'bech32']);
    write(`pool up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s; where to look:`);
    for (const line of await whereToLook({
      registry: pool.registry,
      haproxyPort,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      haproxyStats: poolConfig.haproxy.statsBind,
      haproxySocket: poolConfig.haproxy.statsSocket,
      example,
      logDir,
      redis: 'url' in redisTarget ? redisTarget : { ...redisTarget, replicas: redisServer.replicas },
      configFile,
      adminTokenFile: poolConfig.http.adminTokenFile,
      chain: CHAIN,
    })) {
      write(`  ${line}`);
    }
    write(
      `status every ${intervalMs / 1000} s; ${options.durationMs === undefined ? 'Ctrl-C stops' : `stops after ${options.durationMs / 1000} s (Ctrl-C earlier)`}`,
    );

    miningSince = Date.now();
    sample = () =>
      samplePool({
        miners: demo.miners ? [demo.miners] : [],
        redis,
        keys,
        chain: CHAIN,
        height: () => node0.rpc.getBlockCount(),
        startedAt: miningSince,
      });
    const watch = new StallWatch(options.stallMs ?? 60_000);
    const duration =
      options.durationMs === undefined
        ? undefined
        : setTimeout(() => halt.abort(new Error('duration')), options.durationMs);
    try {
      for (;;) {
        await delay(intervalMs, undefined, { signal: stop }).catch(() => {});
        if (stop.aborted) break;
        try {
          last = await sample();
          write(formatStatus(last));
        } catch (error) {
          write(`status unavailable: ${(error as Error).message}`);
          continue;
        }
        stalled = watch.observe(last.height, Date.now());
        if (stalled) {
          stalled = `${stalled}; ${await templateProblem(node0)}`;
          ok = false;
          write(`hashwire demo: ${stalled}; stopping (exit 1)`);
          break;
        }
      }
    } finally {
      clearTimeout(duration);
      miningMs = Date.now() - miningSince;
    }
  } catch (error) {
    if (!(error instanceof Stopped) && !stop.aborted) {
      ok = false;
      write(`hashwire demo: ${(error as Error).message}`);
    }
  }

  // Teardown, in the order that loses nothing: miners first, then the stratum servers drain and
  // hand their spools to the reporters, then reporters, jobmanagers, HAProxy, Redis, litecoind.
  write(
    `stopping: miners, stratum servers (spools to reporters), reporters, jobmanagers, HAProxy, ${redisKind === 'cluster' ? 'Redis Cluster' : 'redis-server'}, litecoind`,
  );
  await demo.miners?.stop().catch(() => {});
  if (demo.pool?.haproxy) {
    const stats = await demo.pool.haproxy.runtime.serverStats(backend).catch(() => undefined);
    if (stats) write(formatHaproxySessions(stats, haproxyPort));
  }
  await demo.pool?.stop();
  let final: PoolSample | undefined;
  if (sample) {
    try {
      final = { ...(await sample()), elapsedMs: miningMs };
    } catch (error) {
      // A terminal's Ctrl-C reaches redis-server and litecoind too (they share the demo's
      // process group), so they may be gone already.
      write(
        `final count unavailable (${(error as Error).message.split('\n')[0]}); credited, blocks and height below are from the last status line`,
      );
      final = last && { ...last, ...sampleMiners(demo.miners ? [demo.miners] : []), elapsedMs: miningMs };
    }
  }
  demo.redis?.disconnect();
  await Promise.allSettled([demo.regtest?.stop(), demo.redisServer?.stop()]);
  await rm(join(logDir, 'spool'), { recursive: true, force: true });

  const supervised = demo.pool?.supervisor.processes ?? [];
  const leftBehind = [
    ...liveProcesses(),
    ...supervised.filter((p) => p.running || pidAlive(p.pid)).map((p) => ({ name: p.spec.name, pid: p.pid })),
  ];
  const left =
    leftBehind.length === 0
      ? 'no process left'
      : `still running: ${leftBehind.map((p) => `${p.name} pid ${p.pid}`).join(', ')}`;
  write(final ? formatSummary(final, left) : `demo done: ${left}`);
  write(`logs kept in ${logDir}`);
  if (stalled) write(`FAILED: ${stalled}`);
  return {
    ok,
    stalled,
    final,
    logDir,
    services: supervised.map((p) => ({ id: p.spec.name, pid: p.pid })),
    leftBehind,
  };
}
