import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, getService } from '@hashwire/registry';
import { startRedis, waitFor } from '@hashwire/testkit';
import { type BenchChild, benchScript, startBenchChild } from '../child-ipc.js';
import { STEADY_HEAP_FLAGS, percentile, within } from '../measure.js';
import type {
  FeedStarted,
  HandshakeParams,
  HandshakeResult,
  PacedResult,
  SubmitParams,
  SubmitResult,
} from '../stratum-bench-shared.js';
import type { BenchResult, BenchSuite } from '../types.js';
import { cpuNs } from './idle.js';
import { HSLOAD, runHsload } from './stratum.js';

/** The issue's bound on the master against the stratum bin run directly, same run. */
const LATENCY_RATIO = 1.1;
const THROUGHPUT_RATIO = 0.9;
const EXTRANONCE1_SIZE = 4;
const EXTRANONCE2_SIZE = 8;
/** Mainnet-like block: 2,000 transactions → an 11-step merkle branch in every notify. */
const TEMPLATE_TXS = 2000;
const OPEN_CONCURRENCY = 200;
const HANDSHAKE_CONCURRENCY = 200;
const WARMUP_SESSIONS = 200;
const SUBMIT_CONNECTIONS = 100;
const SUBMIT_IN_FLIGHT = 8;
/** Every scrypt hash meets a share target this low: every share is accepted (and spooled). */
const SHARE_DIFFICULTY = 1e-12;
/** Memory probes before a reading counts as settled (see settledRss). */
const SETTLE_PROBES = 10;
const SETTLE_PROBE_MS = 500;
const SETTLED_BYTES = 256 * 1024;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const STRATUM_DIST = join(ROOT, 'packages', 'stratum', 'dist');

const count = (n: number) => n.toLocaleString('en-US');
const epochMs = () => performance.timeOrigin + performance.now();
const ms = (v: number) => Number(v.toFixed(1));

type DesignName = 'direct' | 'master';

/** One stratum service under test, as a supervisor runs it. */
interface Design {
  name: DesignName;
  /** What the figures call it. */
  label: string;
  chain: string;
  child: ChildProcess;
  ready: Record<string, unknown>;
  port: number;
  /** The service's processes: the bin; or the master and its worker. */
  pids: () => number[];
  miners: BenchChild;
  controlPort: number;
  httpUrl: string;
}

/**
 * Issue 20's design against the one before it, in one run: the stratum bin run directly (as a
 * supervisor ran it before the master; the server binds the miner port) and the same bin as
 * the worker of its master (`master-bin.js`: the master binds the miner port and hands the worker the listening socket).
 * Both are real processes with the same config, fed by one stand-in jobmanager over ZeroMQ
 * (stratum-feed-child), each with a miners' process of its own (stratum-session-child), measured
 * in turns so drift in the machine's load touches both alike. Per design:
 * `rss_per_session_bytes` (RSS growth of all the service's processes per idle session, after
 * full collections, once settled: see settledRss), `notify_fanout_10k_p99_ms` (a job pushed by the jobmanager → the last
 * session holding its notify), `handshakes_per_s` (connect, subscribe, authorize, close, over
 * and over) and `submits_per_s` (accepted scrypt shares, 100 miners × 8 in flight); the
 * master's figures have the direct one as baseline. `stratum.upgrade_stall_p99_ms`: miners
 * submitting at a steady pace to the master's service, one upgrade (to the same build, over
 * the control socket); the p99 answer latency of submits whose answer was due during the switch
 * minus the p99 before it (the baseline).
 */
export const stratumMasterSuite: BenchSuite = {
  name: 'stratum-master',
  description: 'stratum bin under its master vs run directly; answer stall during an upgrade',
  async run(ctx) {
    if (process.platform !== 'linux') throw new Error('bench stratum-master: reads /proc, Linux only');
    const sessions = ctx.quick ? 1000 : 10_000;
    const warmupSessions = ctx.quick ? 100 : WARMUP_SESSIONS;
    const rounds = ctx.quick ? 5 : 100;
    const seconds = ctx.quick ? 1 : 5;
    const turns = ctx.quick ? 1 : 2;
    const pacedMiners = ctx.quick ? 100 : 1000;
    const pacedIntervalMs = ctx.quick ? 250 : 1000;
    const steadySeconds = ctx.quick ? 1.5 : 5;
    const redisServer = await startRedis();
    const redis = connectRedis(redisServer.url, 'bench');
    const keyPrefix = `b${randomBytes(4).toString('hex')}:`;
    const keys = createKeyBuilder({ prefix: keyPrefix });
    const tmp = mkdtempSync(join(tmpdir(), 'hw-bench-master-'));
    const probeDir = join(tmp, 'probe');
    const feed = startBenchChild('stratum-feed-child');
    const designs: Design[] = [];
    const children: ChildProcess[] = [];
    const minerChildren: BenchChild[] = [];
    const startMiners = () => {
      const miners = startBenchChild('stratum-session-child');
      minerChildren.push(miners);
      return miners;
    };
    try {
      const chains = { direct: 'bench-direct', master: 'bench-master' };
      // The services start without a job (their miners wait for one): the feed starts beside them.
      const feedStarted = feed.request<FeedStarted>('start', {
        redisUrl: redisServer.url,
        keyPrefix,
        chains: Object.values(chains),
        rounds,
        txCount: TEMPLATE_TXS,
        extranonce1Size: EXTRANONCE1_SIZE,
        extranonce2Size: EXTRANONCE2_SIZE,
      });
      mkdirSync(probeDir);
      // Started side by side; `designs` keeps the order direct, master.
      const startDesign = async (name: DesignName): Promise<Design> => {
        const id = `bench-${name}`;
        const config = {
          id,
          chain: chains[name],
          coin: 'litecoin',
          network: 'regtest',
          spoolDir: join(tmp, `spool-${name}`),
          redisUrl: redisServer.url,
          keyPrefix,
          // No reporter takes their spools: 'piling up' warnings are this bench's normal.
          logLevel: 'error',
          host: '127.0.0.1',
          port: 0,
          httpPortRange: [0, 0],
          extranonce1Size: EXTRANONCE1_SIZE,
          extranonce2Size: EXTRANONCE2_SIZE,
          // Every bench miner connects from 127.0.0.1.
          limits: { maxConnectionsPerIp: 0 },
          vardiff: { enabled: false, initialDifficulty: SHARE_DIFFICULTY, minDifficulty: SHARE_DIFFICULTY },
          // The stand-in jobmanager sends jobs only when a round asks: the last may be old.
          jobFeed: { maxJobAgeMs: 24 * 3_600_000 },
          // No reporter takes the spool: the drain at the end does not wait for one.
          flushTimeoutMs: 100,
          drainAnnounceMs: 0,
        };
        const bin = join(STRATUM_DIST, name === 'master' ? 'master-bin.js' : 'bin.js');
        // A master's worker inherits its node flags (fork's execArgv); Node refuses these in NODE_OPTIONS.
        const child = spawn(process.execPath, [...STEADY_HEAP_FLAGS, bin], {
          env: {
            ...process.env,
            HASHWIRE_STRATUM_CONFIG: JSON.stringify(config),
            // Inherited by a master's worker.
            NODE_OPTIONS: `--expose-gc --import=${pathToFileURL(benchScript('stratum-probe')).href}`,
            HASHWIRE_BENCH_PROBE_DIR: probeDir,
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.push(child);
        const [line] = (await within(
          once(createInterface({ input: child.stdout! }), 'line'),
          60_000,
          `stratum ${name} ready line`,
        )) as [string];
        const ready = JSON.parse(line) as Record<string, unknown>;
        const info = await getService(redis, keys, 'stratum', id);
        if (!info?.http) throw new Error(`stratum ${id} is not registered with an http endpoint`);
        const design: Design = {
          name,
          label: name === 'master' ? 'under its master' : 'run directly',
          chain: chains[name],
          child,
          ready,
          port: Number(ready.port),
          pids: () => (name === 'master' ? [child.pid!, workerPid(ready, child.pid!)] : [child.pid!]),
          miners: startMiners(),
          controlPort: 0,
          httpUrl: info.http,
        };
        return design;
      };
      designs.push(...(await Promise.all([startDesign('direct'), startDesign('master')])));
      const { controlPorts } = await feedStarted;
      for (const d of designs) d.controlPort = controlPorts[d.chain]!;
      const [direct, master] = designs as [Design, Design];
      const both = async <T>(fn: (d: Design) => Promise<T>): Promise<[T, T]> => [
        await fn(direct),
        await fn(master),
      ];
      const connections = async (d: Design) =>
        ((await (await fetch(`${d.httpUrl}/stats`)).json()) as { connections: number }).connections;
      const settle = (d: Design) =>
        waitFor(async () => (await connections(d)) === 0, {
          timeoutMs: 60_000,
          what: `stratum ${d.name}: every session closed`,
        });
      let probeSeq = 0;
      /** RSS of all the design's processes after full collections (see stratum-probe). */
      const rss = async (d: Design) => {
        probeSeq++;
        const pids = d.pids();
        for (const pid of pids) process.kill(pid, 'SIGUSR2');
        const read = (pid: number) => {
          try {
            return JSON.parse(readFileSync(join(probeDir, `${pid}.json`), 'utf8')) as Probe;
          } catch {
            return null;
          }
        };
        // Each process counts its own signals: wait for the one just sent.
        const seqs = new Map(pids.map((pid) => [pid, (read(pid)?.seq ?? 0) + 1]));
        await waitFor(() => pids.every((pid) => (read(pid)?.seq ?? 0) >= seqs.get(pid)!), {
          timeoutMs: 30_000,
          what: `stratum ${d.name}: RSS probe ${probeSeq}`,
        });
        return pids.map((pid) => read(pid)!);
      };
      /**
       * RSS once it has settled: probed every 0.5 s until no process's RSS moved by more than
       * 256 KiB since the probe before. A process gives memory back some time after a collection
       * (a master holding no session: 89.5 → 87.2 MiB, heap used unchanged), which at 1,000
       * sessions was as large as the sessions' own growth (one run measured -1,675 bytes/session).
       */
      const settledRss = async (d: Design) => {
        let last = await rss(d);
        for (let probe = 1; probe < SETTLE_PROBES; probe++) {
          await new Promise((resolve) => setTimeout(resolve, SETTLE_PROBE_MS));
          const now = await rss(d);
          const moved = now.some((p, i) => Math.abs(p.rss - last[i]!.rss) > SETTLED_BYTES);
          last = now;
          if (!moved) break;
        }
        return last;
      };

      // Memory: warm-up sessions opened and closed first, so code compiled on the first
      // connections is not counted per session.
      ctx.log(`stratum-master: opening ${count(sessions)} idle sessions on each design`);
      const rssPerSession = await both(async (d) => {
        await within(
          d.miners.request('open', {
            port: d.port,
            sessions: warmupSessions,
            concurrency: OPEN_CONCURRENCY,
          }),
          60_000,
          `stratum ${d.name}: warm-up sessions with their first job`,
        );
        await d.miners.request('closeSessions');
        await settle(d);
        const before = await settledRss(d);
        await d.miners.request('open', { port: d.port, sessions, concurrency: OPEN_CONCURRENCY });
        const after = await settledRss(d);
        const what = d.name === 'master' ? ['master', 'worker'] : ['bin'];
        // Where the memory went, per process: RSS, and within it V8's heap and external memory.
        const grew = (key: keyof Probe, i: number) => mib(after[i]![key] - before[i]![key]);
        ctx.log(
          `stratum-master: ${d.name}: ${before.map((b, i) => `${what[i]} RSS ${mib(b.rss)} → ${mib(after[i]!.rss)} MiB (heap used +${grew('heapUsed', i)}, external +${grew('external', i)})`).join('; ')}`,
        );
        return (sum(after.map((a) => a.rss)) - sum(before.map((b) => b.rss))) / sessions;
      });

      ctx.log(`stratum-master: ${rounds} notify fan-outs on each design, in turns`);
      const fanouts: [number[], number[]] = [[], []];
      // CPU of every process of the service while a round lasts, in µs: the server's own work per
      // fan-out, which the latency (ending when the miners' process has read the last notify) hides.
      const fanoutCpu: Record<DesignName, number> = { direct: 0, master: 0 };
      for (let round = 0; round <= rounds; round++) {
        const fanout = async (d: Design) => {
          const pids = d.pids();
          const cpuBefore = pids.map(cpuNs);
          const took = await d.miners.request<number>('fanout', {
            controlPort: d.controlPort,
            kind: 'job',
            round,
          });
          if (round > 0) fanoutCpu[d.name] += sum(pids.map((pid, i) => cpuNs(pid) - cpuBefore[i]!)) / 1000;
          return took;
        };
        // Each design goes first every other round: the one measured second shares the cores with
        // what the first round left running (its miners' process still reading 10,000 notifies).
        const [a, b] =
          round % 2 === 0
            ? await both(fanout)
            : await (async () => {
                const m = await fanout(master);
                return [await fanout(direct), m] as const;
              })();
        if (round === 0) continue; // warm-up
        fanouts[0].push(a);
        fanouts[1].push(b);
      }
      ctx.log(
        `stratum-master: fan-out rounds, ms: direct ${fanouts[0].map(Math.round).join(' ')}; master ${fanouts[1].map(Math.round).join(' ')}`,
      );
      await both(async (d) => {
        await d.miners.request('closeSessions');
        await settle(d);
        // Memory still held with every session gone: what a process keeps, not what a session costs.
        ctx.log(
          `stratum-master: ${d.name}: every session closed: RSS ${(await rss(d)).map((p) => `${mib(p.rss)} MiB`).join(', ')}`,
        );
      });

      const cClient = existsSync(HSLOAD);
      const clientName = cClient ? 'C client' : 'Node client, no C compiler';
      ctx.log(
        `stratum-master: handshakes, ${HANDSHAKE_CONCURRENCY} clients (${clientName}), ${turns * 2} turns of ${seconds} s`,
      );
      const hsTotals = { direct: { n: 0, s: 0, cpu: 0 }, master: { n: 0, s: 0, cpu: 0 } };
      const subTotals = { direct: { n: 0, s: 0 }, master: { n: 0, s: 0 } };
      // direct, master, master, direct…: neither design always goes first.
      const order: Design[] = [];
      for (let t = 0; t < turns; t++) order.push(...(t % 2 === 0 ? [direct, master] : [master, direct]));
      const hsWarmup = ctx.quick ? 0.2 : 0.5;
      for (const d of order) {
        const p: HandshakeParams = {
          port: d.port,
          concurrency: HANDSHAKE_CONCURRENCY,
          warmupSeconds: hsWarmup,
          seconds,
        };
        const pids = d.pids();
        const cpuBefore = pids.map(cpuNs);
        const hs = cClient ? await runHsload(p) : await d.miners.request<HandshakeResult>('handshakes', p);
        const cpuByPid = pids.map((pid, i) => (cpuNs(pid) - cpuBefore[i]!) / 1000);
        const cpu = sum(cpuByPid);
        if (d.name === 'master') {
          ctx.log(
            `stratum-master: master: ${hs.handshakes} handshakes, CPU per handshake: master ${Math.round(cpuByPid[0]! / hs.handshakes)} us, worker ${Math.round(cpuByPid[1]! / hs.handshakes)} us`,
          );
        }
        const t = hsTotals[d.name];
        t.n += hs.handshakes;
        t.s += hs.seconds;
        // The warm-up's handshakes cost CPU too: spread it over all of them.
        t.cpu += cpu / (hs.handshakes * (1 + hsWarmup / seconds));
        await settle(d);
      }
      ctx.log(
        `stratum-master: mining.submit, ${SUBMIT_CONNECTIONS} miners × ${SUBMIT_IN_FLIGHT} in flight, ${turns * 2} turns of ${seconds} s`,
      );
      for (const d of order) {
        const p: SubmitParams & { extranonce2Size: number } = {
          port: d.port,
          extranonce2Size: EXTRANONCE2_SIZE,
          connections: SUBMIT_CONNECTIONS,
          inFlight: SUBMIT_IN_FLIGHT,
          warmupSeconds: 1,
          seconds,
        };
        const sub = await d.miners.request<SubmitResult>('submits', p);
        if (sub.refused > 0) {
          throw new Error(`bench: ${d.name}: ${sub.refused} shares refused, the first: ${sub.firstRefusal}`);
        }
        subTotals[d.name].n += sub.accepted;
        subTotals[d.name].s += sub.seconds;
        await settle(d);
      }

      ctx.log(
        `stratum-master: upgrade stall: ${pacedMiners} miners each submitting every ${pacedIntervalMs} ms; ${steadySeconds} s steady, then one upgrade`,
      );
      const stall = await upgradeStall(master, {
        connections: pacedMiners,
        intervalMs: pacedIntervalMs,
        steadySeconds,
      });
      ctx.log(
        `stratum-master: switch of ${stall.moved} sessions in ${stall.switchMs} ms (new worker started in ${stall.startMs} ms); ${stall.during.length} answers due during it, ${stall.steady.length} before`,
      );

      const hsPerS = (n: DesignName) => hsTotals[n].n / hsTotals[n].s;
      const subPerS = (n: DesignName) => subTotals[n].n / subTotals[n].s;
      const hsCpu = (n: DesignName) => hsTotals[n].cpu / turns;
      const fanoutP99 = fanouts.map((f) => percentile(f, 99)) as [number, number];
      const steadyP99 = percentile(stall.steady, 99);
      const duringP99 = percentile(stall.during, 99);
      const duringWorst = Math.max(...stall.during);
      const results: BenchResult[] = [];
      const pair = (
        figure: string,
        unit: string,
        values: [number, number],
        higherIsBetter: boolean,
        round: (v: number) => number,
      ) => {
        const [d, m] = values.map(round) as [number, number];
        results.push(
          {
            name: `stratum.direct.${figure}`,
            value: d,
            unit: `${unit}; the stratum bin run directly`,
            higherIsBetter,
            baseline: null,
          },
          {
            name: `stratum.master.${figure}`,
            value: m,
            unit: `${unit}; the stratum bin under its master (accepting from the listening socket the master handed it), ${(m / d).toFixed(2)}x the direct figure`,
            higherIsBetter,
            baseline: { name: 'the stratum bin run directly, same run', value: d },
            target: higherIsBetter ? `>= ${THROUGHPUT_RATIO}x baseline` : `<= ${LATENCY_RATIO}x baseline`,
            met: higherIsBetter ? m >= THROUGHPUT_RATIO * d : m <= LATENCY_RATIO * d,
          },
        );
      };
      pair(
        'rss_per_session_bytes',
        `bytes/session (${count(sessions)} idle sessions, RSS of every process of the service)`,
        rssPerSession,
        false,
        Math.round,
      );
      pair(
        'notify_fanout_10k_p99_ms',
        `ms (p99 of ${rounds} jobs pushed by a jobmanager over ZeroMQ, ${count(sessions)} sessions; ${Math.round(fanoutCpu.direct / rounds)} and ${Math.round(fanoutCpu.master / rounds)} us of CPU per fan-out, direct and master)`,
        fanoutP99,
        false,
        ms,
      );
      pair(
        'handshakes_per_s',
        `handshakes/s (${HANDSHAKE_CONCURRENCY} clients, ${clientName}; ${Math.round(hsCpu('direct'))} and ${Math.round(hsCpu('master'))} us of CPU per handshake, direct and master)`,
        [hsPerS('direct'), hsPerS('master')],
        true,
        Math.round,
      );
      pair(
        'submits_per_s',
        `accepted shares/s (scrypt, ${SUBMIT_CONNECTIONS} miners × ${SUBMIT_IN_FLIGHT} submits in flight)`,
        [subPerS('direct'), subPerS('master')],
        true,
        Math.round,
      );
      results.push({
        name: 'stratum.upgrade_stall_p99_ms',
        value: ms(duringP99 - steadyP99),
        unit: `ms added to the p99 answer latency during an upgrade (p99 ${ms(duringP99)} ms during, ${ms(steadyP99)} ms before, the worst during ${ms(duringWorst)} ms; ${pacedMiners} miners × 1 submit per ${pacedIntervalMs} ms; ${stall.moved} sessions moved in ${stall.switchMs} ms)`,
        higherIsBetter: false,
        baseline: { name: 'p99 answer latency before the upgrade, same run', value: ms(steadyP99) },
      });
      return results;
    } finally {
      await Promise.all(minerChildren.map((miners) => miners.close()));
      await Promise.all(children.map((child) => stopService(child)));
      await feed.close();
      redis.disconnect();
      await redisServer.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
};

/** The master's ready line names its worker's pid (the worker's own ready line, the master's added). */
function workerPid(ready: Record<string, unknown>, masterPid: number): number {
  const pid = Number(ready.pid);
  if (!Number.isInteger(pid) || pid === masterPid)
    throw new Error(`master ready line names no worker: ${JSON.stringify(ready)}`);
  return pid;
}

/** What stratum-probe writes. */
interface Probe {
  seq: number;
  rss: number;
  heapUsed: number;
  external: number;
}

interface Stall {
  /** Answer latencies (ms) of submits answered before the switch began, after a warm-up. */
  steady: number[];
  /** Of submits sent before the switch ended and answered after it began. */
  during: number[];
  moved: number;
  switchMs: number;
  startMs: number;
}

/**
 * Paced load on the master's service, one upgrade through its control socket (to the same
 * build: what the switch costs, whatever changed in the code).
 */
async function upgradeStall(
  master: Design,
  p: { connections: number; intervalMs: number; steadySeconds: number },
): Promise<Stall> {
  await master.miners.request('pacedStart', {
    port: master.port,
    extranonce2Size: EXTRANONCE2_SIZE,
    connections: p.connections,
    intervalMs: p.intervalMs,
  });
  // A warm-up interval, then the steady window (a measuring window, not a synchronisation).
  const steadyFrom = epochMs() + 2 * p.intervalMs;
  await new Promise((resolve) => setTimeout(resolve, 2 * p.intervalMs + p.steadySeconds * 1000));
  const switchFrom = epochMs();
  const answer = await within(upgradeOverControl(String(master.ready.control)), 120_000, 'upgrade');
  const switchTo = epochMs();
  if (answer.ok !== true) throw new Error(`upgrade failed: ${String(answer.error)}`);
  // Stops sending; what was sent during the switch still gets its answers (or counts unanswered).
  const result = await master.miners.request<PacedResult>('pacedStop', { graceMs: 10_000 });
  if (result.refused > 0 || result.closed > 0 || result.unanswered > 0) {
    throw new Error(
      `upgrade stall: ${result.refused} shares refused, ${result.closed} miners disconnected, ${result.unanswered} submits unanswered; the first refusal: ${result.firstRefusal}`,
    );
  }
  const steady: number[] = [];
  const during: number[] = [];
  result.sentAt.forEach((sent, i) => {
    const answered = result.answeredAt[i]!;
    if (sent >= steadyFrom && answered < switchFrom) steady.push(answered - sent);
    else if (sent <= switchTo && answered >= switchFrom) during.push(answered - sent);
  });
  return {
    steady,
    during,
    moved: Number(answer.moved),
    switchMs: Math.round(switchTo - switchFrom),
    startMs: Number(answer.startMs),
  };
}

/** `{"op":"upgrade"}` on a master's control socket (its own build); the answer line. */
async function upgradeOverControl(path: string): Promise<Record<string, unknown>> {
  const socket = createConnection(path);
  socket.write(`${JSON.stringify({ op: 'upgrade' })}\n`);
  const [line] = (await once(createInterface({ input: socket }), 'line')) as [string];
  socket.destroy();
  return JSON.parse(line) as Record<string, unknown>;
}

/** SIGTERM (the service drains), SIGKILL when it has not ended within 15 s. */
async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
