import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { reporterKeys } from '@hashwire/reporter';
import {
  type LitecoinNode,
  type LitecoinRegtest,
  type RedisServer,
  type SimMiners,
  liveProcesses,
  startLitecoinRegtest,
  startRedis,
  startSimMiners,
} from '@hashwire/testkit';
import {
  type DemoService,
  type ServiceKind,
  checkBinsBuilt,
  pidAlive,
  startService,
} from './demo-services.js';
import { type PoolSample, formatStatus, formatSummary, sampleMiners, samplePool } from './demo-status.js';
import { formatHashRate } from './sim.js';

export const demoUsage = `usage: hashwire demo [--duration SECONDS] [--interval SECONDS]

Runs a whole pool locally on embedded defaults: its own redis-server, two litecoind regtest
nodes (MWEB active), 2 jobmanagers, 2 reporters and 2 stratum servers (each its own process,
logs in a temporary directory), and 20 simulated miners split over the stratum servers. Prints
a status line every few seconds; Ctrl-C (or SIGTERM) stops every process it started.
Not built yet, so not part of it: HAProxy on :3333, the api and the dashboard.

  --duration SECONDS  stop after mining this long (default: until Ctrl-C or SIGTERM)
  --interval SECONDS  between two status lines (default 5)`;

/** A bad `hashwire demo` command line (printed as one line, exit code 2). */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError';
}

export interface DemoOptions {
  /** Stop after mining this long (counted from when the miners are up). @defaultValue until `signal` aborts */
  durationMs?: number;
  /** Between two status lines. @defaultValue 5_000 */
  intervalMs?: number;
  /** Aborting stops the demo (the command wires SIGINT and SIGTERM to it). */
  signal?: AbortSignal;
  /** Receives each output line. @defaultValue written to stdout */
  write?: (line: string) => void;
}

export interface DemoResult {
  /** False when the pool could not start or a service died on its own. */
  ok: boolean;
  /** Counters at the end, after the stratum servers handed their spools to the reporters. */
  final: PoolSample | undefined;
  /** Where the services' logs are (kept after the demo). */
  logDir: string;
  /** Every service process the demo started. */
  services: { id: string; pid: number }[];
  /** Processes still running after the teardown (empty unless something refused to stop). */
  leftBehind: { name: string; pid: number }[];
}

const CHAIN = 'litecoin-regtest';
const MINERS = 20;
/** All miners together; about a fifth of what two cores can scrypt, so the machine stays usable. */
const HASHES_PER_SECOND = 4_000;
/**
 * About 2048 hashes per share, so about two shares a second in all. Every share also meets the
 * regtest network target, so each accepted share is a block too.
 */
const SHARE_DIFF = 2 ** -5;
const READY_TIMEOUT_MS = 30_000;
/**
 * Stop order, and how long each kind gets between SIGTERM and SIGKILL: a stratum server drains
 * and hands its spool to a reporter, a reporter finishes the batches it is writing, a jobmanager
 * only hands over its lease (and waits for a Redis that may be gone already).
 */
const STOP_ORDER: readonly [ServiceKind, number][] = [
  ['stratum', 20_000],
  ['reporter', 10_000],
  ['jobmanager', 5_000],
];

function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new DemoUsageError(`--${flag} must be a number of seconds above 0, got "${value}"`);
  }
  return Math.round(n * 1000);
}

/** `hashwire demo`: parses the command line, stops on SIGINT/SIGTERM; exit code 0 when it stopped cleanly. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      interval: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${demoUsage}\n`);
    return 0;
  }
  const durationMs = seconds(values.duration, 'duration');
  const intervalMs = seconds(values.interval, 'interval');
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    process.stdout.write(`\n${signal}: stopping\n`);
    controller.abort(new Error(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runDemo({
      signal: controller.signal,
      ...(durationMs !== undefined && { durationMs }),
      ...(intervalMs !== undefined && { intervalMs }),
    });
    return result.ok && result.leftBehind.length === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write(`hashwire demo: ${(error as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Everything started so far, so the teardown stops exactly that. */
interface Pool {
  redisServer?: RedisServer;
  regtest?: LitecoinRegtest;
  redis?: RedisClient;
  services: DemoService[];
  miners: SimMiners[];
}

/** Starts all of them; whatever started is handed to `keep` even when another failed, then the first failure is thrown. */
async function startAll<T>(starts: Promise<T>[], keep: (started: T) => void): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  const started: T[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') {
      keep(s.value);
      started.push(s.value);
    }
  }
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return started;
}

/** Like Promise.all, but waits for every one (each keeps what it started) before throwing the first failure. */
async function settleAll<A, B>(both: [Promise<A>, Promise<B>]): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled(both);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

const took = (since: number) => ` in ${((performance.now() - since) / 1000).toFixed(1)} s`;

/** Thrown between start steps once the demo was asked to stop. */
class Stopped extends Error {}

/**
 * Starts the pool step by step, prints a status line every `intervalMs` until `durationMs` passed
 * or `signal` aborted (or a service died), then stops everything it started in order: miners,
 * stratum servers (they drain and hand their spools to the reporters), reporters, jobmanagers,
 * Redis and litecoind.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const intervalMs = options.intervalMs ?? 5_000;
  const halt = new AbortController();
  const stop = AbortSignal.any(options.signal ? [options.signal, halt.signal] : [halt.signal]);
  const checkStop = () => {
    if (stop.aborted) throw new Stopped();
  };

  write('hashwire demo: a whole pool on this machine, litecoin regtest, embedded defaults');
  write(
    'not built yet, so not started: HAProxy on :3333, the api and the dashboard; the miners connect to the stratum servers directly',
  );
  checkBinsBuilt();
  const logDir = await mkdtemp(join(tmpdir(), 'hashwire-demo-'));
  write(`logs: ${logDir}`);

  const pool: Pool = { services: [], miners: [] };
  const startedAt = performance.now();
  let ok = true;
  let stopping = false;
  let last: PoolSample | undefined;
  let miningSince = Date.now();
  let miningMs = 0;
  let sample: (() => Promise<PoolSample>) | undefined;
  const keys = createKeyBuilder();
  const keepService = (service: DemoService) => {
    pool.services.push(service);
    void service.exited.then((exit) => {
      if (stopping) return;
      ok = false;
      write(
        `${service.kind} ${service.id} exited on its own (${exit.code ?? exit.signal}); its log: ${service.logFile}`,
      );
      halt.abort(new Error(`${service.id} exited`));
    });
  };

  try {
    // 1. Redis and the daemons.
    let stepStarted = performance.now();
    await startAll<RedisServer | LitecoinRegtest>(
      [startRedis(), startLitecoinRegtest({ nodes: 2 })],
      (started) => {
        if ('url' in started) pool.redisServer = started;
        else pool.regtest = started;
      },
    );
    const redisServer = pool.redisServer!;
    const regtest = pool.regtest!;
    const [node0, node1] = regtest.nodes as [LitecoinNode, LitecoinNode];
    const redis = connectRedis(redisServer.url, 'hashwire-demo');
    pool.redis = redis;
    write(`[1/6] redis-server ${redisServer.url} (pid ${redisServer.pid})${took(stepStarted)}`);
    write(
      `[2/6] litecoind regtest x2, MWEB active, height ${regtest.startHeight}: node0 ${node0.rpcUrl} (pid ${node0.pid}), node1 ${node1.rpcUrl} (pid ${node1.pid})${took(stepStarted)}`,
    );
    checkStop();
    const payout = await node0.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const account = await node1.rpc.call<string>('getnewaddress', ['', 'bech32']);
    const daemons = regtest.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile }));
    const base = { redisUrl: redisServer.url, logLevel: 'info' };
    const start = (kind: ServiceKind, id: string, config: Record<string, unknown>) =>
      startService({
        kind,
        id,
        config: { id, ...base, ...config },
        logDir,
        readyTimeoutMs: READY_TIMEOUT_MS,
      });
    const describe = (services: DemoService[], what: (s: DemoService) => string) =>
      services.map((s) => `${s.id} ${what(s)} (pid ${s.pid})`).join(', ');

    // 2. Jobmanagers (one leads, one stands by; both poll node0 and submit blocks to both nodes)
    //    and reporters, before the stratum servers, so their first job and share batch find one.
    checkStop();
    stepStarted = performance.now();
    const [jobmanagers, reporters] = await settleAll([
      startAll(
        ['jm-1', 'jm-2'].map((id) =>
          start('jobmanager', id, {
            coin: 'litecoin',
            network: 'regtest',
            daemons,
            payouts: [{ address: payout }],
          }),
        ),
        keepService,
      ),
      startAll(
        ['reporter-1', 'reporter-2'].map((id) =>
          start('reporter', id, { chain: CHAIN, daemons, blockPollMs: 2_000 }),
        ),
        keepService,
      ),
    ]);
    write(
      `[3/6] jobmanagers ${describe(jobmanagers, (s) => String(s.ready.endpoint))}, payout ${payout}${took(stepStarted)}`,
    );
    write(`[4/6] reporters ${describe(reporters, (s) => String(s.ready.endpoint))}${took(stepStarted)}`);

    // 4. Stratum servers on ports of their own choosing (23000–23999), fixed low difficulty.
    checkStop();
    stepStarted = performance.now();
    const stratum = await startAll(
      ['stratum-1', 'stratum-2'].map((id) =>
        start('stratum', id, {
          chain: CHAIN,
          coin: 'litecoin',
          network: 'regtest',
          host: '127.0.0.1',
          spoolDir: join(logDir, `${id}-spool`),
          vardiff: { enabled: false, initialDifficulty: SHARE_DIFF },
          drain: { graceMs: 5_000 },
          flushTimeoutMs: 15_000,
        }),
      ),
      keepService,
    );
    const ports = stratum.map((s) => s.ready.port as number);
    write(`[5/6] stratum servers ${describe(stratum, (s) => `:${s.ready.port}`)}${took(stepStarted)}`);

    // 5. Sim miners, half on each stratum server.
    checkStop();
    stepStarted = performance.now();
    const perServer = MINERS / ports.length;
    await startAll(
      ports.map((port, group) =>
        startSimMiners({
          host: '127.0.0.1',
          port,
          workers: perServer,
          username: (i) => `${account}.sim${group * perServer + i}`,
          algorithm: 'scrypt',
          hashesPerSecondLimit: HASHES_PER_SECOND / ports.length,
        }),
      ),
      (miners) => pool.miners.push(miners),
    );
    write(
      `[6/6] ${MINERS} sim miners as ${account}.simN, ${perServer} on each of :${ports.join(', :')}, difficulty ${SHARE_DIFF} (vardiff off), scrypt capped at ${formatHashRate(HASHES_PER_SECOND)}${took(stepStarted)}`,
    );

    // Where to look.
    const example = await node1.rpc.call<string>('getnewaddress', ['', 'bech32']);
    write(`pool up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s; where to look:`);
    write(
      `  stratum     ${stratum.map((s) => `stratum+tcp://127.0.0.1:${s.ready.port} (${s.id})`).join(', ')}`,
    );
    write(
      `  your miner  any scrypt miner at one of those, username a regtest address (e.g. ${example}.rig1), any password; every share is a regtest block`,
    );
    write(`  logs        ${logDir}/<id>.log for ${pool.services.map((s) => s.id).join(', ')}`);
    write(
      `  redis       ${redisServer.url}, keys under ${keys.prefix} (blocks: redis-cli -p ${redisServer.port} hgetall '${reporterKeys(keys, CHAIN).blocks}')`,
    );
    write('  not yet     HAProxy on :3333, the api (/stats, /metrics) and the dashboard are not built yet');
    write(
      `status every ${intervalMs / 1000} s; ${options.durationMs === undefined ? 'Ctrl-C stops' : `stops after ${options.durationMs / 1000} s (Ctrl-C earlier)`}`,
    );

    miningSince = Date.now();
    sample = () =>
      samplePool({
        miners: pool.miners,
        redis,
        keys,
        chain: CHAIN,
        height: () => node0.rpc.getBlockCount(),
        startedAt: miningSince,
      });
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
  } finally {
    stopping = true;
  }

  // Teardown, in the order that loses nothing: miners first, then the stratum servers drain and
  // hand their spools to the reporters, then reporters and jobmanagers, then Redis and litecoind.
  write(
    'stopping: miners, stratum servers (spools to reporters), reporters, jobmanagers, redis-server, litecoind',
  );
  await Promise.all(pool.miners.map((m) => m.stop().catch(() => {})));
  for (const [kind, deadlineMs] of STOP_ORDER) {
    const services = pool.services.filter((s) => s.kind === kind);
    if (services.length === 0) continue;
    const since = performance.now();
    const exits = await Promise.all(services.map((s) => s.stop(deadlineMs)));
    const how = exits.map((e) => (e.code === 0 ? 'exit 0' : `exit ${e.code ?? e.signal}`));
    write(`stopped ${services.map((s, i) => `${s.id} (${how[i]})`).join(', ')}${took(since)}`);
  }
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
      final = last && { ...last, ...sampleMiners(pool.miners), elapsedMs: miningMs };
    }
  }
  pool.redis?.disconnect();
  await Promise.allSettled([pool.regtest?.stop(), pool.redisServer?.stop()]);
  await Promise.all(
    pool.services
      .filter((s) => s.kind === 'stratum')
      .map((s) => rm(join(logDir, `${s.id}-spool`), { recursive: true, force: true })),
  );

  const leftBehind = [
    ...liveProcesses(),
    ...pool.services.filter((s) => s.running || pidAlive(s.pid)).map((s) => ({ name: s.id, pid: s.pid })),
  ];
  const left =
    leftBehind.length === 0
      ? 'no process left'
      : `still running: ${leftBehind.map((p) => `${p.name} pid ${p.pid}`).join(', ')}`;
  write(final ? formatSummary(final, left) : `demo done: ${left}`);
  write(`logs kept in ${logDir}`);
  return {
    ok,
    final,
    logDir,
    services: pool.services.map((s) => ({ id: s.id, pid: s.pid })),
    leftBehind,
  };
}
