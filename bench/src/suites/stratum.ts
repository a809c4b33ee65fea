import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { startRedis, waitFor } from '@hashwire/testkit';
import { startBenchChild } from '../child-ipc.js';
import { STEADY_HEAP_FLAGS, percentile } from '../measure.js';
import {
  BENCH_ADDRESS,
  type HandshakeParams,
  type HandshakeResult,
  type ServerStartParams,
  type ServerStarted,
  type SubmitParams,
  type SubmitResult,
  type SubmitServerStarted,
  benchAddresses,
} from '../stratum-bench-shared.js';
import type { BenchResult, BenchSuite } from '../types.js';

const RSS_TARGET_BYTES = 10_240;
const HANDSHAKES_TARGET = 5000;
const FANOUT_TARGET_RATIO = 1.3;
/** SOLO fan-out (issue 19): ≤ 1.5× its bare loop. */
const SOLO_FANOUT_TARGET_RATIO = 1.5;
/** Sessions per payout address in the SOLO fan-out: 10,000 sessions over 1,000 addresses. */
const SESSIONS_PER_ADDRESS = 10;
/** Mainnet-like block: 2,000 transactions → an 11-step merkle branch in every notify. */
const TEMPLATE_TXS = 2000;
const OPEN_CONCURRENCY = 200;
const HANDSHAKE_CONCURRENCY = 200;
const WARMUP_SESSIONS = 200;
/** Share load: miners, each with this many submits outstanding. */
const SUBMIT_CONNECTIONS = 100;
const SUBMIT_IN_FLIGHT = 8;
/** The C handshake load (native/hsload.c), built by `pnpm build` where a C compiler is. */
export const HSLOAD = fileURLToPath(new URL('../../native/build/hsload', import.meta.url));

const count = (n: number) => n.toLocaleString('en-US');

/**
 * The stratum server under many miners, in three processes: the server alone in one (its
 * RSS is what the sessions cost), the miners' sockets in another, this one conducting.
 * `stratum.rss_per_session_bytes`: RSS growth per idle subscribed and authorized session.
 * `stratum.notify_fanout_10k_p99_ms`: a new job handed to the server → the last session
 * holding its whole `mining.notify`, timed by the miners' process, which triggers the job;
 * baseline the same rounds with a bare loop writing one prebuilt line of the same size to
 * the server's same sockets. `stratum.notify_fanout_10k_solo_p99_ms`: the same with SOLO jobs
 * and the sessions spread over one payout address per 10 sessions (10,000 over 1,000), each
 * getting a coinbase paying its own address; baseline the same bare loop writing one address's
 * line (as long as every other's). `stratum.handshakes_per_s`: subscribe + authorize completed
 * per second by clients that connect, handshake and close, over and over; the clients are
 * native/hsload.c where it was built (a Node client spends about as much CPU per handshake as
 * the server, on the same cores), else the Node client of the miners' process.
 * Its baseline: the same load on a bare node:net server writing a canned reply of the same
 * size (what Node alone costs per handshake here). `stratum.handshake_server_cpu_us`: the
 * server process's CPU per handshake in that run. `stratum.redis_bytes_per_session`: Redis
 * `used_memory` growth per idle session (its resumable `sess:` hash and its `en1:` claim).
 */
export const stratumSuite: BenchSuite = {
  name: 'stratum',
  description: 'stratum server: memory per idle session, notify fan-out, handshakes',
  async run(ctx) {
    const sessions = ctx.quick ? 1000 : 10_000;
    const rounds = ctx.quick ? 5 : 20;
    const handshakeSeconds = ctx.quick ? 1 : 5;
    const redisServer = await startRedis();
    const spoolDir = mkdtempSync(join(tmpdir(), 'hw-bench-stratum-'));
    const submitSpoolDir = mkdtempSync(join(tmpdir(), 'hw-bench-stratum-submit-'));
    const server = startBenchChild('stratum-server-child', {
      execArgv: ['--expose-gc', ...STEADY_HEAP_FLAGS],
    });
    const miners = startBenchChild('stratum-session-child');
    const redis = connectRedis(redisServer.url, 'bench');
    const keyPrefix = `b${randomBytes(4).toString('hex')}:`;
    const soloAddresses = benchAddresses(sessions / SESSIONS_PER_ADDRESS);
    try {
      const start: ServerStartParams = {
        soloAddresses,
        redisUrl: redisServer.url,
        keyPrefix,
        spoolDir,
        rounds,
        txCount: TEMPLATE_TXS,
      };
      const { port, controlPort, notifyBytes, soloNotifyBytes } = await server.request<ServerStarted>(
        'start',
        start,
      );

      // A few sessions first, so code compiled on the first connections is not counted per session.
      await miners.request('open', { port, sessions: WARMUP_SESSIONS, concurrency: OPEN_CONCURRENCY });
      await miners.request('closeSessions');
      await server.request('settle', { count: 0 });
      const rssBefore = await server.request<number>('rss');
      // The warm-up's sessions stay resumable (their keys live on), so count from here.
      const sessKeysBefore = await countKeys(redis, `${keyPrefix}sess:*`);
      const redisBefore = await usedMemory(redis);
      ctx.log(`stratum: opening ${count(sessions)} idle sessions`);
      const opened = await miners.request<{ sessions: number; ms: number }>('open', {
        port,
        sessions,
        concurrency: OPEN_CONCURRENCY,
      });
      const rssWith = await server.request<number>('rss');
      const perSession = (rssWith - rssBefore) / sessions;
      // Sessions are written to Redis in the server's background batches: wait for all of them.
      await waitFor(async () => (await countKeys(redis, `${keyPrefix}sess:*`)) >= sessKeysBefore + sessions, {
        timeoutMs: 60_000,
        what: `${count(sessions)} sessions stored in Redis`,
      });
      const redisPerSession = ((await usedMemory(redis)) - redisBefore) / sessions;
      ctx.log(
        `stratum: Redis +${Math.round(redisPerSession)} B/session; one session hash ${await sampleUsage(redis, `${keyPrefix}sess:*`)} B, one extranonce1 claim ${await sampleUsage(redis, `${keyPrefix}en1:*`)} B (MEMORY USAGE)`,
      );
      ctx.log(
        `stratum: ${count(opened.sessions)} sessions open in ${Math.round(opened.ms)} ms, RSS ${mib(rssBefore)} → ${mib(rssWith)} MiB`,
      );

      ctx.log(`stratum: ${rounds} notify fan-outs of ${notifyBytes} bytes, and as many bare write loops`);
      const fanout: number[] = [];
      const bare: number[] = [];
      for (let round = 0; round <= rounds; round++) {
        // Interleaved, so drift in the machine's load touches both alike.
        const job = await miners.request<number>('fanout', { controlPort, kind: 'job', round });
        const raw = await miners.request<number>('fanout', { controlPort, kind: 'raw', round });
        if (round === 0) continue; // warm-up
        fanout.push(job);
        bare.push(raw);
      }
      await miners.request('closeSessions');
      await server.request('settle', { count: 0 });

      ctx.log(
        `stratum: SOLO, ${count(sessions)} sessions over ${count(soloAddresses.length)} payout addresses: ${rounds} notify fan-outs of ${soloNotifyBytes} bytes, and as many bare write loops`,
      );
      await miners.request('open', {
        port,
        sessions,
        addresses: soloAddresses,
        concurrency: OPEN_CONCURRENCY,
      });
      const soloFanout: number[] = [];
      const soloBare: number[] = [];
      for (let round = 0; round <= rounds; round++) {
        const job = await miners.request<number>('fanout', { controlPort, kind: 'solo', round });
        const raw = await miners.request<number>('fanout', { controlPort, kind: 'soloraw', round });
        if (round === 0) continue; // warm-up
        soloFanout.push(job);
        soloBare.push(raw);
      }
      await miners.request('closeSessions');
      await server.request('settle', { count: 0 });
      await server.request('plainJob');
      await server.request('forgetSockets');

      const handshakeParams: HandshakeParams = {
        port,
        concurrency: HANDSHAKE_CONCURRENCY,
        warmupSeconds: ctx.quick ? 0.2 : 0.5,
        seconds: handshakeSeconds,
      };
      const cClient = existsSync(HSLOAD);
      const clientName = cClient ? 'C client' : 'Node client, no C compiler';
      const runHandshakes = (p: HandshakeParams) =>
        cClient ? runHsload(p) : miners.request<HandshakeResult>('handshakes', p);
      ctx.log(`stratum: handshakes on a bare node:net server (baseline), ${clientName}`);
      const barePort = await server.request<number>('bareListen');
      const bareHs = await runHandshakes({ ...handshakeParams, port: barePort });
      ctx.log(
        `stratum: handshakes, ${HANDSHAKE_CONCURRENCY} clients (${clientName}) for ${handshakeSeconds} s`,
      );
      const cpuBefore = await server.request<number>('cpu');
      const hs = await runHandshakes(handshakeParams);
      const cpuAfter = await server.request<number>('cpu');
      const handshakesPerS = hs.handshakes / hs.seconds;
      // The warm-up's handshakes were not counted but cost CPU too: spread it over all of them.
      const handshakesRun = hs.handshakes * (1 + handshakeParams.warmupSeconds / handshakeParams.seconds);
      const serverCpuUs = (cpuAfter - cpuBefore) / handshakesRun;

      const submitServer = await server.request<SubmitServerStarted>('startSubmit', {
        keyPrefix,
        spoolDir: submitSpoolDir,
        txCount: TEMPLATE_TXS,
      });
      const submitParams: SubmitParams & { extranonce2Size: number } = {
        port: submitServer.port,
        extranonce2Size: submitServer.extranonce2Size,
        connections: SUBMIT_CONNECTIONS,
        inFlight: SUBMIT_IN_FLIGHT,
        warmupSeconds: ctx.quick ? 0.3 : 1,
        seconds: handshakeSeconds,
      };
      ctx.log(
        `stratum: mining.submit, ${SUBMIT_CONNECTIONS} miners × ${SUBMIT_IN_FLIGHT} in flight for ${handshakeSeconds} s, scrypt, every share accepted`,
      );
      const submitCpuBefore = await server.request<number>('cpu');
      const sub = await miners.request<SubmitResult>('submits', submitParams);
      const submitCpuAfter = await server.request<number>('cpu');
      if (sub.refused > 0) {
        throw new Error(`bench: ${sub.refused} shares refused, the first: ${sub.firstRefusal}`);
      }
      const submitsPerS = sub.accepted / sub.seconds;
      const submitsRun = sub.accepted * (1 + submitParams.warmupSeconds / submitParams.seconds);
      const submitCpuUs = (submitCpuAfter - submitCpuBefore) / submitsRun;
      ctx.log(`stratum: ${count(sub.accepted)} shares accepted in ${sub.seconds.toFixed(1)} s`);

      const fanoutP99 = percentile(fanout, 99);
      const bareP99 = percentile(bare, 99);
      const soloP99 = percentile(soloFanout, 99);
      const soloBareP99 = percentile(soloBare, 99);
      const ms = (v: number) => Number(v.toFixed(1));
      const results: BenchResult[] = [
        {
          name: 'stratum.rss_per_session_bytes',
          value: Math.round(perSession),
          unit: `bytes/session (${count(sessions)} idle sessions)`,
          higherIsBetter: false,
          baseline: null,
          target: `<= ${count(RSS_TARGET_BYTES)} bytes`,
          met: perSession <= RSS_TARGET_BYTES,
        },
        {
          name: 'stratum.redis_bytes_per_session',
          value: Math.round(redisPerSession),
          unit: `bytes/session (Redis used_memory, ${count(sessions)} idle sessions)`,
          higherIsBetter: false,
          baseline: null,
        },
        {
          name: 'stratum.handshakes_per_s',
          value: Math.round(handshakesPerS),
          unit: `handshakes/s (${HANDSHAKE_CONCURRENCY} clients, ${clientName})`,
          higherIsBetter: true,
          baseline: {
            name: 'bare node:net server, canned reply of the same size',
            value: Math.round(bareHs.handshakes / bareHs.seconds),
          },
          target: `>= ${count(HANDSHAKES_TARGET)}/s`,
          met: handshakesPerS >= HANDSHAKES_TARGET,
        },
        {
          // What one handshake costs the server, whatever else shares the machine.
          name: 'stratum.handshake_server_cpu_us',
          value: Math.round(serverCpuUs),
          unit: 'us of server CPU per handshake (all threads, user + system)',
          higherIsBetter: false,
          baseline: null,
        },
        {
          // The whole share path of one process: read, parse, scrypt, dedupe, answer, spool.
          name: 'stratum.submits_per_s',
          value: Math.round(submitsPerS),
          unit: `accepted shares/s (scrypt, ${SUBMIT_CONNECTIONS} miners × ${SUBMIT_IN_FLIGHT} submits in flight, one process)`,
          higherIsBetter: true,
          baseline: null,
        },
        {
          name: 'stratum.submit_server_cpu_us',
          value: Math.round(submitCpuUs),
          unit: 'us of server CPU per accepted share (all threads, user + system)',
          higherIsBetter: false,
          baseline: null,
        },
        {
          name: 'stratum.notify_fanout_10k_p99_ms',
          value: ms(fanoutP99),
          unit: `ms (p99 of ${rounds} jobs, ${count(sessions)} sessions, ${notifyBytes}-byte notify)`,
          higherIsBetter: false,
          baseline: { name: 'bare loop writing one prebuilt buffer, p99', value: ms(bareP99) },
          target: `<= ${FANOUT_TARGET_RATIO}x baseline`,
          met: fanoutP99 <= FANOUT_TARGET_RATIO * bareP99,
        },
        {
          name: 'stratum.notify_fanout_10k_solo_p99_ms',
          value: ms(soloP99),
          unit: `ms (p99 of ${rounds} SOLO jobs, ${count(sessions)} sessions over ${count(soloAddresses.length)} payout addresses, ${soloNotifyBytes}-byte notify; ${(soloP99 / fanoutP99).toFixed(2)}x the pool-coinbase fan-out's ${ms(fanoutP99)} ms)`,
          higherIsBetter: false,
          baseline: { name: 'bare loop writing one prebuilt buffer, p99', value: ms(soloBareP99) },
          target: `<= ${SOLO_FANOUT_TARGET_RATIO}x baseline`,
          met: soloP99 <= SOLO_FANOUT_TARGET_RATIO * soloBareP99,
        },
      ];
      return results;
    } finally {
      await Promise.all([miners.close(), server.close()]);
      redis.disconnect();
      await redisServer.stop();
      rmSync(spoolDir, { recursive: true, force: true });
      rmSync(submitSpoolDir, { recursive: true, force: true });
    }
  },
};

/** Runs the C handshake load; its failure (a refused authorize, say) fails the suite. */
export async function runHsload(p: HandshakeParams): Promise<HandshakeResult> {
  const args = [p.port, p.concurrency, p.warmupSeconds, p.seconds, BENCH_ADDRESS].map(String);
  try {
    const { stdout } = await promisify(execFile)(HSLOAD, args, {
      timeout: (p.warmupSeconds + p.seconds + 30) * 1000,
    });
    return JSON.parse(stdout) as HandshakeResult;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`handshake load failed: ${stderr || (error as Error).message}`);
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

async function countKeys(redis: RedisClient, match: string): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

async function usedMemory(redis: RedisClient): Promise<number> {
  const text = (await redis.info('memory')) as string;
  return Number(/^used_memory:(\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

/** MEMORY USAGE of one key matching `match` (the first SCAN finds), or 0 when there is none. */
async function sampleUsage(redis: RedisClient, match: string): Promise<number> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    if (keys[0]) return Number(await redis.memory('USAGE', keys[0]));
    cursor = next;
  } while (cursor !== '0');
  return 0;
}
